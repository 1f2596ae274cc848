using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Tests.Postgres;

/// <summary>Text PostgreSQL can store, errors that are the values' fault, and the encoding the pipeline needs.</summary>
public sealed class PgTextTests
{
    [Fact]
    public void Storable_text_replaces_NUL_and_unpaired_surrogates_and_cuts_long_text_at_a_character_boundary()
    {
        Assert.Equal("a\uFFFDb\uFFFDc😀", PgText.Storable("a\0b\uDC00c😀", 100));
        Assert.Same("plain", PgText.Storable("plain", 100));
        // The cut would fall between the halves of the first surrogate pair, so it comes one character earlier.
        var cut = PgText.Storable(new string('x', 16) + "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀", 30);
        Assert.Equal(30 - 1, cut.Length);
        Assert.EndsWith("x… (truncated)", cut, StringComparison.Ordinal);
        Assert.Null(PgText.Unstorable(cut));
    }

    [Theory]
    [InlineData("22001", true)]
    [InlineData("22P05", true)]
    [InlineData("23505", true)]
    [InlineData("23514", true)]
    [InlineData("54000", true)]
    [InlineData("53100", false)]
    [InlineData("42P01", false)]
    [InlineData("25P02", false)]
    [InlineData("08006", false)]
    [InlineData("P0001", false)]
    public void Data_errors_are_classes_22_23_and_54(string sqlState, bool isDataError)
        => Assert.Equal(isDataError, PostgresErrors.IsDataError(new PostgresException("refused", "ERROR", "ERROR", sqlState)));

    [Fact]
    public void Only_UTF8_databases_are_accepted_and_the_refusal_says_how_to_move()
    {
        Assert.Null(DatabaseEncoding.Problem("UTF8", "app", "source"));
        Assert.Equal(
            "The source database \"app\" has server encoding SQL_ASCII; the pipeline needs UTF8 (SQL_ASCII stores any bytes unchecked, so values may not be valid UTF-8). "
            + "Create a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0) and move the data into it (pg_dump, then pg_restore into the new database), "
            + "then point the source connection string at it.",
            DatabaseEncoding.Problem("SQL_ASCII", "app", "source"));
        Assert.Contains("not every character converts to and from LATIN1", DatabaseEncoding.Problem("LATIN1", "log", "changelog"), StringComparison.Ordinal);
    }
}
