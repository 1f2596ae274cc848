using NpgsqlTypes;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

public sealed class LsnTests
{
    [Theory]
    [InlineData("0/0", 0UL)]
    [InlineData("16/B374D848", 0x16_B374D848UL)]
    [InlineData("FFFFFFFF/FFFFFFFF", ulong.MaxValue)]
    [InlineData("0/1", 1UL)]
    public void Parses_and_formats_like_postgresql(string text, ulong value)
    {
        var lsn = Lsn.Parse(text);

        Assert.Equal(value, lsn.Value);
        Assert.Equal(text, lsn.ToString());
        Assert.Equal(text, $"{lsn}");
        Span<byte> utf8 = stackalloc byte[17];
        Assert.True(lsn.TryFormat(utf8, out var written, default, null));
        Assert.Equal(text, System.Text.Encoding.ASCII.GetString(utf8[..written]));
    }

    [Theory]
    [InlineData("00000016/0B374D848")]
    [InlineData("")]
    [InlineData("/")]
    [InlineData("16/")]
    [InlineData("/16")]
    [InlineData("16")]
    [InlineData("1G/0")]
    [InlineData("123456789/0")]
    [InlineData("0/0/0")]
    [InlineData(" 0/0")]
    [InlineData("-1/0")]
    public void Rejects_text_that_is_not_an_lsn(string text)
    {
        Assert.False(Lsn.TryParse(text, out _));
        var error = Assert.Throws<FormatException>(() => Lsn.Parse(text));
        Assert.Contains("is not a PostgreSQL LSN", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Accepts_lower_case_and_leading_zeros()
        => Assert.Equal(0x16_B374D848UL, Lsn.Parse("00000016/b374d848").Value);

    [Fact]
    public void Compares_as_an_unsigned_offset()
    {
        var low = Lsn.Parse("0/FFFFFFFF");
        var high = Lsn.Parse("1/0");

        Assert.True(low < high);
        Assert.True(high > low);
        Assert.True(low <= Lsn.Parse("0/FFFFFFFF") && low >= Lsn.Parse("0/FFFFFFFF"));
        Assert.True(Lsn.MaxValue > high);
        Assert.Equal(high, Lsn.Max(low, high));
        Assert.Equal(low, Lsn.Min(low, high));
        Assert.Equal(-1, low.CompareTo(high));
        Assert.Equal(Lsn.Parse("1/0"), high);
        Assert.NotEqual(low, high);
        Assert.False(Lsn.Invalid.IsValid);
        Assert.True(high.IsValid);
    }

    [Fact]
    public void Adds_and_subtracts_bytes()
    {
        var lsn = Lsn.Parse("0/FFFFFFF0");

        Assert.Equal(Lsn.Parse("1/10"), lsn + 0x20);
        Assert.Equal(Lsn.Parse("0/FFFFFFE0"), lsn - 0x10);
        Assert.Equal(0x20L, Lsn.Parse("1/10") - lsn);
        Assert.Equal(-0x20L, lsn - Lsn.Parse("1/10"));
        Assert.Throws<OverflowException>(() => Lsn.MaxValue + 1);
        Assert.Throws<OverflowException>(() => Lsn.Invalid - 1);
    }

    [Fact]
    public void Converts_to_and_from_npgsql()
    {
        var npgsql = NpgsqlLogSequenceNumber.Parse("16/B374D848");

        Lsn lsn = npgsql;
        NpgsqlLogSequenceNumber back = lsn;

        Assert.Equal("16/B374D848", lsn.ToString());
        Assert.Equal(npgsql, back);
    }
}
