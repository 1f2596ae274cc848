using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

internal sealed partial class RelationMapping
{
    /// <summary>Per referenced column, the conversion of its binary values; checked once per Relation message.</summary>
    private static BinaryColumnFormat[] BinaryFormats(RelationInfo relation, TableRegistration table, int[] positions)
    {
        var columns = table.ReferencedColumns;
        var formats = new BinaryColumnFormat[columns.Count];
        for (var i = 0; i < formats.Length; i++)
        {
            var column = relation.Columns[positions[i]];
            if (!BinaryValueText.NeedsText(table, columns[i]))
            {
                // Only null versus non-null is read; a type that converts still keeps its text for assigners.
                var format = BinaryValueText.For(column.TypeOid);
                formats[i] = format == BinaryColumnFormat.Unsupported ? BinaryColumnFormat.Presence : format;
                continue;
            }
            formats[i] = BinaryValueText.For(column.TypeOid);
            if (formats[i] == BinaryColumnFormat.Unsupported)
            {
                throw new WalPipelineException(
                    BinaryValueText.UnsupportedColumn(table.ToString(), column.Name, TypeName(column.TypeOid)) + " Then restart the pipeline.");
            }
        }
        return formats;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadBinary(int column, int length)
    {
        var relationColumn = Relation.Columns[_positions[column]];
        throw new WalPipelineException(
            $"Column '{relationColumn.Name}' of {Table} arrived as a binary value of {length} byte(s), which is not a valid "
            + $"{TypeName(relationColumn.TypeOid)} (or, for text, not UTF-8; the database encoding must be UTF8). "
            + "Turn BinaryTupleMode off and report this with the table's definition.");
    }

    /// <summary>A type's name for messages: the built-in ones a registration is likely to hit, else its OID.</summary>
    private static string TypeName(uint oid) => oid switch
    {
        BinaryValueText.TypeOids.Bool => "boolean",
        BinaryValueText.TypeOids.Name => "name",
        BinaryValueText.TypeOids.Int8 => "bigint",
        BinaryValueText.TypeOids.Int2 => "smallint",
        BinaryValueText.TypeOids.Int4 => "integer",
        BinaryValueText.TypeOids.Text => "text",
        BinaryValueText.TypeOids.Oid => "oid",
        BinaryValueText.TypeOids.Bpchar => "character",
        BinaryValueText.TypeOids.Varchar => "character varying",
        BinaryValueText.TypeOids.Uuid => "uuid",
        17 => "bytea",
        18 => "\"char\"",
        114 => "json",
        700 => "real",
        701 => "double precision",
        1082 => "date",
        1083 => "time without time zone",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1700 => "numeric",
        3802 => "jsonb",
        _ => $"the type with OID {oid} (not a built-in key type: a domain, enum or extension type)",
    };
}
