using System.Text;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>The binary-to-text conversions against PostgreSQL's own output functions' text, at the types' edges.</summary>
public sealed class BinaryValueTextTests
{
    [Theory]
    [InlineData("Uuid", "9f1c2a4e8d3b4c5ea1f0123456789abc", "9f1c2a4e-8d3b-4c5e-a1f0-123456789abc")]
    [InlineData("Uuid", "ffffffffffffffffffffffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff")]
    [InlineData("Uuid", "00000000000000000000000000000000", "00000000-0000-0000-0000-000000000000")]
    [InlineData("Int2", "8000", "-32768")]
    [InlineData("Int2", "7fff", "32767")]
    [InlineData("Int2", "0000", "0")]
    [InlineData("Int4", "80000000", "-2147483648")]
    [InlineData("Int4", "0000002a", "42")]
    [InlineData("Int8", "8000000000000000", "-9223372036854775808")]
    [InlineData("Int8", "7fffffffffffffff", "9223372036854775807")]
    [InlineData("Oid", "ffffffff", "4294967295")]
    [InlineData("Bool", "01", "t")]
    [InlineData("Bool", "00", "f")]
    [InlineData("Text", "6ec3a976", "név")]
    [InlineData("Text", "", "")]
    [InlineData("Presence", "00030401f6123a00", "")]
    public void Converts_to_the_servers_text(string formatName, string hex, string expected)
    {
        var format = Enum.Parse<BinaryColumnFormat>(formatName);
        var data = Convert.FromHexString(hex);
        var destination = new byte[BinaryValueText.MaxTextLength(format, data.Length)];

        var length = BinaryValueText.Format(format, data, destination);

        Assert.Equal(expected, Encoding.UTF8.GetString(destination, 0, length));
    }

    [Theory]
    [InlineData("Uuid", "00")]
    [InlineData("Int2", "000000")]
    [InlineData("Int4", "0000")]
    [InlineData("Int8", "00000000")]
    [InlineData("Oid", "00")]
    [InlineData("Bool", "02")]
    [InlineData("Bool", "")]
    [InlineData("Text", "c328")]
    [InlineData("Unsupported", "00")]
    public void Bytes_that_are_not_a_value_of_the_type_are_refused(string formatName, string hex)
    {
        var format = Enum.Parse<BinaryColumnFormat>(formatName);
        var data = Convert.FromHexString(hex);

        Assert.Equal(-1, BinaryValueText.Format(format, data, new byte[BinaryValueText.MaxTextLength(format, data.Length)]));
    }

    [Theory]
    [InlineData(2950u, "Uuid")]
    [InlineData(21u, "Int2")]
    [InlineData(23u, "Int4")]
    [InlineData(20u, "Int8")]
    [InlineData(26u, "Oid")]
    [InlineData(16u, "Bool")]
    [InlineData(25u, "Text")]
    [InlineData(1043u, "Text")]
    [InlineData(1042u, "Text")]
    [InlineData(19u, "Text")]
    [InlineData(1700u, "Unsupported")]
    [InlineData(1184u, "Unsupported")]
    [InlineData(16400u, "Unsupported")]
    public void Maps_type_oids(uint oid, string expected) => Assert.Equal(Enum.Parse<BinaryColumnFormat>(expected), BinaryValueText.For(oid));
}
