using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Tests.Replication;

public sealed class PgIdentifierTests
{
    private static readonly string s_longest = new('a', 63);

    [Theory]
    [InlineData("a")]
    [InlineData("synchro_slot")]
    [InlineData("slot_2024_01")]
    [InlineData("_")]
    [InlineData("0")]
    public void Accepts_slot_names_the_server_accepts(string name) => Assert.True(PgIdentifier.IsValid(name));

    [Fact]
    public void Accepts_a_slot_name_of_exactly_63_characters() => Assert.True(PgIdentifier.IsValid(s_longest));

    [Theory]
    [InlineData("")]
    [InlineData("Slot")]
    [InlineData("my-slot")]
    [InlineData("my slot")]
    [InlineData("slot.name")]
    [InlineData("sl\u00f6t")]
    [InlineData("slot\0")]
    [InlineData("x\"; DROP TABLE t; --")]
    [InlineData("x'); DROP TABLE t; --")]
    public void Rejects_slot_names_the_server_rejects(string name) => Assert.False(PgIdentifier.IsValid(name));

    [Fact]
    public void Rejects_null_and_over_long_slot_names()
    {
        Assert.False(PgIdentifier.IsValid(null));
        Assert.False(PgIdentifier.IsValid(s_longest + "a"));
    }

    [Theory]
    [InlineData("items")]
    [InlineData("Items")]
    [InlineData("order items")]
    [InlineData("x\"; DROP TABLE t; --")]
    [InlineData("\u00e9t\u00e9")]
    [InlineData("\U0001F600")]
    public void Accepts_object_names_that_a_quoted_identifier_keeps_exactly(string name) => Assert.True(PgIdentifier.IsValidObjectName(name));

    [Fact]
    public void Counts_the_63_byte_limit_in_utf8_bytes_not_characters()
    {
        Assert.True(PgIdentifier.IsValidObjectName(s_longest));
        Assert.False(PgIdentifier.IsValidObjectName(s_longest + "a"));
        Assert.True(PgIdentifier.IsValidObjectName(new string('\u00e9', 31) + "a"));
        Assert.False(PgIdentifier.IsValidObjectName(new string('\u00e9', 32)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a\0b")]
    [InlineData("\0")]
    public void Rejects_object_names_no_identifier_can_hold(string name) => Assert.False(PgIdentifier.IsValidObjectName(name));

    [Fact]
    public void Rejects_null_and_unpaired_surrogates_as_object_names()
    {
        // Built in code: attribute arguments are stored as UTF-8, which would turn a lone surrogate into U+FFFD.
        Assert.False(PgIdentifier.IsValidObjectName(null));
        Assert.False(PgIdentifier.IsValidObjectName("\ud800"));
        Assert.False(PgIdentifier.IsValidObjectName("a\udc00b"));
        Assert.False(PgIdentifier.IsValidObjectName("\udc00\ud800"));
    }

    [Theory]
    [InlineData("items", "\"items\"")]
    [InlineData("Items", "\"Items\"")]
    [InlineData("a\"b", "\"a\"\"b\"")]
    [InlineData("\"", "\"\"\"\"")]
    [InlineData("x\"; DROP TABLE t; --", "\"x\"\"; DROP TABLE t; --\"")]
    public void Quotes_with_double_quotes_and_doubles_inner_quotes(string name, string quoted) => Assert.Equal(quoted, PgIdentifier.Quote(name));

    [Fact]
    public void Quotes_schema_and_name_separately()
    {
        Assert.Equal("\"public\".\"items\"", PgIdentifier.QuoteQualified("public", "items"));
        Assert.Equal("\"a.b\".\"c\"\"d\"", PgIdentifier.QuoteQualified("a.b", "c\"d"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a\0b")]
    public void Refuses_to_quote_names_no_identifier_can_hold(string name)
    {
        Assert.Throws<ArgumentException>(() => PgIdentifier.Quote(name));
        Assert.Throws<ArgumentException>(() => PgIdentifier.QuoteQualified("public", name));
        Assert.Throws<ArgumentException>(() => PgIdentifier.QuoteQualified(name, "t"));
    }

    [Fact]
    public void A_quoted_injection_attempt_is_one_identifier_to_the_server_scanner()
    {
        var quoted = PgIdentifier.Quote("x\"; DROP TABLE t; --");

        // The scanner ends a quoted identifier at the first lone quote; every inner quote is doubled, so that is the last character.
        var body = quoted[1..^1];
        Assert.Equal('"', quoted[0]);
        Assert.Equal('"', quoted[^1]);
        Assert.Equal(0, body.Replace("\"\"", "", StringComparison.Ordinal).Count(c => c == '"'));
    }
}
