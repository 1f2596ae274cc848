using System.Buffers.Binary;
using System.Text;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>Writes hand-made pgoutput messages, big-endian, for inputs a real server never sends.</summary>
internal sealed class MessageBuilder
{
    private readonly List<byte> _bytes = [];

    public MessageBuilder(char kind) => _bytes.Add((byte)kind);

    public MessageBuilder Byte(int value)
    {
        _bytes.Add((byte)value);
        return this;
    }

    public MessageBuilder Char(char value) => Byte(value);

    public MessageBuilder Int16(short value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteInt16BigEndian(b, value);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public MessageBuilder Int32(int value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public MessageBuilder Int64(long value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, value);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public MessageBuilder CString(string value)
    {
        _bytes.AddRange(Encoding.UTF8.GetBytes(value));
        _bytes.Add(0);
        return this;
    }

    public MessageBuilder Raw(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public MessageBuilder Text(string value)
    {
        var utf8 = Encoding.UTF8.GetBytes(value);
        return Char('t').Int32(utf8.Length).Raw(utf8);
    }

    public byte[] Build() => [.. _bytes];

    /// <summary>Relation 16384 <c>public.t (id int4 key, owner text)</c>.</summary>
    public static byte[] Relation(uint oid = 16384) => new MessageBuilder('R').Int32((int)oid).CString("public").CString("t").Char('d').Int16(2)
        .Byte(1).CString("id").Int32(23).Int32(-1)
        .Byte(0).CString("owner").Int32(25).Int32(-1)
        .Build();

    /// <summary>A valid Insert into <see cref="Relation"/>.</summary>
    public static byte[] Insert(uint oid = 16384) => new MessageBuilder('I').Int32((int)oid).Char('N').Int16(2).Text("1").Text("u1").Build();
}
