using System.Buffers;

namespace Synchro.Pipeline.Reading;

/// <summary>The rows one read fetched, in pooled arrays: column by column, record ids packed in one character buffer.</summary>
internal sealed class ChangelogRows
{
    private const int InitialRows = 256;
    private const int InitialChars = 4_096;

    public long[] Seq = [];
    public int[] Bucket = [];
    public short[] Operation = [];
    public string[] Table = [];
    public int[] IdStart = [];
    public int[] IdLength = [];
    public char[] Chars = [];
    public int Count;
    public int CharCount;

    /// <summary>Indices of the rows in <c>seq</c> order, after <see cref="SortBySeq"/>.</summary>
    public int[] Order = [];

    public static ChangelogRows Rent() => new();

    /// <summary>Space for one more row; returns its index.</summary>
    public int Add(long seq, int bucket, short operation, string table)
    {
        if (Count == Seq.Length)
            GrowRows();
        var row = Count++;
        Seq[row] = seq;
        Bucket[row] = bucket;
        Operation[row] = operation;
        Table[row] = table;
        IdStart[row] = CharCount;
        IdLength[row] = 0;
        return row;
    }

    /// <summary>Room for <paramref name="length"/> characters at the end of <see cref="Chars"/>, for the record id of <paramref name="row"/>; returns where.</summary>
    public int ReserveChars(int row, int length)
    {
        if (CharCount + length > Chars.Length)
            Chars = Grow(Chars, Math.Max(InitialChars, Math.Max(Chars.Length * 2, CharCount + length)), CharCount);
        var start = CharCount;
        IdStart[row] = start;
        IdLength[row] = length;
        CharCount += length;
        return start;
    }

    public ReadOnlySpan<char> RecordId(int row) => Chars.AsSpan(IdStart[row], IdLength[row]);

    /// <summary>Fills <see cref="Order"/> with the rows' indices sorted by <c>seq</c>.</summary>
    public void SortBySeq()
    {
        if (Order.Length < Count)
        {
            Return(Order);
            Order = ArrayPool<int>.Shared.Rent(Count);
        }
        var keys = ArrayPool<long>.Shared.Rent(Math.Max(Count, 1));
        try
        {
            Seq.AsSpan(0, Count).CopyTo(keys);
            for (var i = 0; i < Count; i++)
                Order[i] = i;
            keys.AsSpan(0, Count).Sort(Order.AsSpan(0, Count));
        }
        finally
        {
            ArrayPool<long>.Shared.Return(keys);
        }
    }

    public void Return()
    {
        Return(Seq);
        Return(Bucket);
        Return(Operation);
        Array.Clear(Table, 0, Count);
        Return(Table);
        Return(IdStart);
        Return(IdLength);
        Return(Chars);
        Return(Order);
        Seq = [];
        Bucket = [];
        Operation = [];
        Table = [];
        IdStart = [];
        IdLength = [];
        Chars = [];
        Order = [];
        Count = 0;
        CharCount = 0;
    }

    private void GrowRows()
    {
        var size = Math.Max(InitialRows, Seq.Length * 2);
        Seq = Grow(Seq, size, Count);
        Bucket = Grow(Bucket, size, Count);
        Operation = Grow(Operation, size, Count);
        Table = Grow(Table, size, Count);
        IdStart = Grow(IdStart, size, Count);
        IdLength = Grow(IdLength, size, Count);
    }

    private static T[] Grow<T>(T[] array, int size, int used)
    {
        var larger = ArrayPool<T>.Shared.Rent(size);
        array.AsSpan(0, used).CopyTo(larger);
        if (typeof(T) == typeof(string))
            Array.Clear(array, 0, used);
        Return(array);
        return larger;
    }

    private static void Return<T>(T[] array)
    {
        if (array.Length > 0)
            ArrayPool<T>.Shared.Return(array);
    }
}
