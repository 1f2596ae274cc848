using Microsoft.Extensions.Logging.Abstractions;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Protocol;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>
/// Invariant 10: a transaction that gives the writer nothing (changes to tables that are not registered, such as the
/// pipeline's own sidecar tables under a FOR ALL TABLES publication) never makes a changelog commit of its own; the
/// position passes it with the next batch or heartbeat.
/// </summary>
public sealed class EmptyTransactionTests
{
    private const uint Registered = 16384;
    private const uint Other = 16390;

    private readonly ChangeDecoder _decoder = new(
        new TableRegistry().Add(new TableRegistration("t") { OwnerColumn = "owner", SoftDeleteColumn = null }), new BatchLimits(1000, 1 << 20), Lsn.Invalid, NullLogger.Instance)
    {
        SkipOrigins = OriginFilter.Create(["synchro_pipeline.slot"]),
    };

    private readonly PgOutputParser _parser = new(new PgOutputOptions(1, messages: true));

    public EmptyTransactionTests()
    {
        Feed(MessageBuilder.Relation(Registered));
        Feed(new MessageBuilder('R').Int32((int)Other).CString("public").CString("sync_wal_position").Char('d').Int16(1)
            .Byte(1).CString("slot_name").Int32(25).Int32(-1).Build());
    }

    [Fact]
    public void A_transaction_on_tables_that_are_not_registered_sends_nothing()
    {
        Transaction(0x100, 0x180, Other);
        Transaction(0x200, 0x280, Other);
        _decoder.CutAtIdle();

        Assert.Empty(DecoderItems.TakeAll(_decoder));
        Assert.False(_decoder.HasCompleteTransactions);
    }

    [Fact]
    public void The_next_heartbeat_carries_the_position_past_empty_transactions()
    {
        Transaction(0x100, 0x180, Other);
        Feed(HeartbeatAt(0x300));

        var heartbeat = Assert.IsType<Heartbeat>(Assert.Single(DecoderItems.TakeAll(_decoder)));
        Assert.Equal(new Lsn(0x300), heartbeat.Position);
    }

    [Fact]
    public void An_empty_transaction_after_a_registered_one_rides_along_in_its_batch()
    {
        Transaction(0x100, 0x180, Registered);
        Transaction(0x200, 0x280, Other);

        var batch = DecoderItems.CutIdleBatch(_decoder);

        Assert.Equal(1, batch.Count);
        Assert.Equal(2, batch.Transactions);
        Assert.Equal(new Lsn(0x280), batch.EndLsn);
        batch.Release();
    }

    [Fact]
    public void A_registered_transaction_after_empty_ones_is_a_batch_of_its_own_with_its_commit_time()
    {
        Transaction(0x100, 0x180, Other, commitTime: 1);
        Transaction(0x200, 0x280, Registered, commitTime: 2);

        var batch = DecoderItems.CutIdleBatch(_decoder);

        Assert.Equal(1, batch.Transactions);
        Assert.Equal(PgTimestamp.ToDateTime(2), batch.FirstCommitTime);
        batch.Release();
    }

    [Fact]
    public void A_transaction_under_the_pipelines_own_origin_sends_nothing_even_with_registered_changes()
    {
        Feed(Begin(0x100, 1));
        Feed(new MessageBuilder('O').Int64(0).CString("synchro_pipeline.slot").Build());
        Feed(MessageBuilder.Insert(Registered));
        Feed(Commit(0x100, 0x180, 1));
        _decoder.CutAtIdle();

        Assert.Empty(DecoderItems.TakeAll(_decoder));
    }

    private void Transaction(long commitLsn, long endLsn, uint table, long commitTime = 1)
    {
        Feed(Begin(commitLsn, commitTime));
        Feed(table == Registered ? MessageBuilder.Insert(Registered) : new MessageBuilder('I').Int32((int)Other).Char('N').Int16(1).Text("slot").Build());
        Feed(Commit(commitLsn, endLsn, commitTime));
    }

    private static byte[] Begin(long finalLsn, long commitTime) => new MessageBuilder('B').Int64(finalLsn).Int64(commitTime).Int32(700).Build();

    private static byte[] Commit(long commitLsn, long endLsn, long commitTime) => new MessageBuilder('C').Byte(0).Int64(commitLsn).Int64(endLsn).Int64(commitTime).Build();

    private static byte[] HeartbeatAt(long lsn)
        => new MessageBuilder('M').Byte(0).Int64(lsn).CString(HeartbeatMessage.Prefix).Int32(0).Build();

    private void Feed(byte[] payload)
    {
        var handler = new DecoderStage.Handler(_decoder, payload.Length);
        _parser.Parse(payload, Lsn.Invalid, ref handler);
    }
}
