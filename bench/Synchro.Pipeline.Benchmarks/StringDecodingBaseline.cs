using System.Buffers.Binary;
using System.Text;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// The decoder most pgoutput consumers write (and what the Go reference does with pglogrepl): read
/// each message by index, big-endian; keep a dictionary of relations with string column names; turn
/// every text column of every row into a <see cref="string"/> and build a
/// <c>Dictionary&lt;string, string?&gt;</c> (column name to value) per row; allocate one object per message.
/// </summary>
/// <remarks>
/// Deliberately straightforward but not wasteful: no MemoryStream/BinaryReader per message, one
/// dictionary per row presized to the column count. Supports what the benchmark stream holds
/// (Begin, Commit, Relation, Insert, Update, Delete in protocol 1, text mode) and throws on anything else.
/// </remarks>
internal sealed class StringDecodingBaseline
{
    private readonly Dictionary<uint, BaselineRelation> _relations = [];

    public IReadOnlyDictionary<uint, BaselineRelation> Relations => _relations;

    public BaselineMessage Decode(byte[] message)
    {
        var position = 1;
        switch ((char)message[0])
        {
            case 'B':
            {
                var finalLsn = ReadUInt64(message, ref position);
                var timestamp = ReadInt64(message, ref position);
                var xid = ReadUInt32(message, ref position);
                return new BaselineBegin(finalLsn, timestamp, xid);
            }
            case 'C':
            {
                var flags = message[position++];
                var commitLsn = ReadUInt64(message, ref position);
                var endLsn = ReadUInt64(message, ref position);
                var timestamp = ReadInt64(message, ref position);
                return new BaselineCommit(flags, commitLsn, endLsn, timestamp);
            }
            case 'R':
            {
                var oid = ReadUInt32(message, ref position);
                var schema = ReadString(message, ref position);
                var name = ReadString(message, ref position);
                var replicaIdentity = (char)message[position++];
                var count = ReadInt16(message, ref position);
                var columns = new BaselineColumn[count];
                for (var i = 0; i < count; i++)
                {
                    var flags = message[position++];
                    var columnName = ReadString(message, ref position);
                    var typeOid = ReadUInt32(message, ref position);
                    var typeModifier = ReadInt32(message, ref position);
                    columns[i] = new BaselineColumn(columnName, typeOid, typeModifier, IsKey: (flags & 1) != 0);
                }
                var relation = new BaselineRelation(oid, schema, name, replicaIdentity, columns);
                _relations[oid] = relation;
                return new BaselineRelationMessage(relation);
            }
            case 'I':
            {
                var relation = ReadRelation(message, ref position);
                ExpectMarker(message, ref position, 'N');
                var newRow = ReadTuple(message, ref position, relation);
                return new BaselineRowChange('I', relation, OldRow: null, newRow);
            }
            case 'U':
            {
                var relation = ReadRelation(message, ref position);
                Dictionary<string, string?>? oldRow = null;
                var marker = (char)message[position++];
                if (marker is 'K' or 'O')
                {
                    oldRow = ReadTuple(message, ref position, relation);
                    marker = (char)message[position++];
                }
                if (marker != 'N')
                    throw new InvalidDataException($"Update: expected tuple marker 'N', found '{marker}'.");
                var newRow = ReadTuple(message, ref position, relation);
                return new BaselineRowChange('U', relation, oldRow, newRow);
            }
            case 'D':
            {
                var relation = ReadRelation(message, ref position);
                var marker = (char)message[position++];
                if (marker is not ('K' or 'O'))
                    throw new InvalidDataException($"Delete: expected tuple marker 'K' or 'O', found '{marker}'.");
                var oldRow = ReadTuple(message, ref position, relation);
                return new BaselineRowChange('D', relation, oldRow, NewRow: null);
            }
            default:
                throw new NotSupportedException($"Message kind '{(char)message[0]}' is not supported by the baseline decoder.");
        }
    }

    private BaselineRelation ReadRelation(byte[] message, ref int position)
    {
        var oid = ReadUInt32(message, ref position);
        return _relations.TryGetValue(oid, out var relation)
            ? relation
            : throw new InvalidDataException($"Row for unknown relation OID {oid}.");
    }

    private static void ExpectMarker(byte[] message, ref int position, char expected)
    {
        var marker = (char)message[position++];
        if (marker != expected)
            throw new InvalidDataException($"Expected tuple marker '{expected}', found '{marker}'.");
    }

    private static Dictionary<string, string?> ReadTuple(byte[] message, ref int position, BaselineRelation relation)
    {
        var count = ReadInt16(message, ref position);
        if (count != relation.Columns.Length)
            throw new InvalidDataException($"Tuple has {count} columns, relation {relation.Name} has {relation.Columns.Length}.");
        var row = new Dictionary<string, string?>(count);
        for (var i = 0; i < count; i++)
        {
            var name = relation.Columns[i].Name;
            switch ((char)message[position++])
            {
                case 'n':
                    row[name] = null;
                    break;
                case 'u':
                    // Unchanged TOAST value: not sent; leave the column out.
                    break;
                case 't':
                {
                    var length = ReadInt32(message, ref position);
                    row[name] = Encoding.UTF8.GetString(message, position, length);
                    position += length;
                    break;
                }
                default:
                    throw new NotSupportedException($"Column value kind '{(char)message[position - 1]}' is not supported by the baseline decoder.");
            }
        }
        return row;
    }

    private static string ReadString(byte[] message, ref int position)
    {
        var end = Array.IndexOf(message, (byte)0, position);
        if (end < 0)
            throw new InvalidDataException("Unterminated string.");
        var value = Encoding.UTF8.GetString(message, position, end - position);
        position = end + 1;
        return value;
    }

    private static short ReadInt16(byte[] message, ref int position)
    {
        var value = BinaryPrimitives.ReadInt16BigEndian(message.AsSpan(position));
        position += sizeof(short);
        return value;
    }

    private static int ReadInt32(byte[] message, ref int position)
    {
        var value = BinaryPrimitives.ReadInt32BigEndian(message.AsSpan(position));
        position += sizeof(int);
        return value;
    }

    private static uint ReadUInt32(byte[] message, ref int position)
    {
        var value = BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(position));
        position += sizeof(uint);
        return value;
    }

    private static long ReadInt64(byte[] message, ref int position)
    {
        var value = BinaryPrimitives.ReadInt64BigEndian(message.AsSpan(position));
        position += sizeof(long);
        return value;
    }

    private static ulong ReadUInt64(byte[] message, ref int position)
    {
        var value = BinaryPrimitives.ReadUInt64BigEndian(message.AsSpan(position));
        position += sizeof(ulong);
        return value;
    }
}

internal sealed record BaselineColumn(string Name, uint TypeOid, int TypeModifier, bool IsKey);

internal sealed class BaselineRelation
{
    public BaselineRelation(uint oid, string schema, string name, char replicaIdentity, BaselineColumn[] columns)
    {
        Oid = oid;
        Schema = schema;
        Name = name;
        ReplicaIdentity = replicaIdentity;
        Columns = columns;
        KeyColumn = Array.Find(columns, c => c.IsKey)?.Name;
    }

    public uint Oid { get; }

    public string Schema { get; }

    public string Name { get; }

    public char ReplicaIdentity { get; }

    public BaselineColumn[] Columns { get; }

    /// <summary>The first replica identity column, or null.</summary>
    public string? KeyColumn { get; }
}

internal abstract record BaselineMessage;

internal sealed record BaselineBegin(ulong FinalLsn, long CommitTimestamp, uint Xid) : BaselineMessage;

internal sealed record BaselineCommit(byte Flags, ulong CommitLsn, ulong EndLsn, long CommitTimestamp) : BaselineMessage;

internal sealed record BaselineRelationMessage(BaselineRelation Relation) : BaselineMessage;

internal sealed record BaselineRowChange(char Kind, BaselineRelation Relation, Dictionary<string, string?>? OldRow, Dictionary<string, string?>? NewRow) : BaselineMessage;
