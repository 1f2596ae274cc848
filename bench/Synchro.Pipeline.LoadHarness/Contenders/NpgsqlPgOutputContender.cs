using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>
/// The .NET peer: Npgsql's own <c>PgOutputReplicationPlugin</c> reading every column of every row as
/// text, until the backlog's last transaction.
/// </summary>
internal static class NpgsqlPgOutputContender
{
    public static async Task<ContenderResult> RunAsync(ContenderSpec spec, CancellationToken ct)
    {
        var stop = NpgsqlLogSequenceNumber.Parse(spec.StopLsn);
        await using var connection = new LogicalReplicationConnection(spec.SourceConnectionString);
        await connection.Open(ct);
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var slot = new PgOutputReplicationSlot(spec.SlotName);
        var options = new PgOutputReplicationOptions(spec.PublicationName, PgOutputProtocolVersion.V1, binary: false, messages: true);

        var usage = ProcessUsage.Now();
        long changes = 0;
        var reachedEnd = false;
        await foreach (var message in connection.StartReplication(slot, options, stream.Token))
        {
            switch (message)
            {
                case InsertMessage insert:
                    changes++;
                    await ReadAllAsync(insert.NewRow, ct);
                    break;
                case UpdateMessage update:
                    changes++;
                    await ReadAllAsync(update.NewRow, ct);
                    break;
                case KeyDeleteMessage delete:
                    changes++;
                    await ReadAllAsync(delete.Key, ct);
                    break;
                case FullDeleteMessage delete:
                    changes++;
                    await ReadAllAsync(delete.OldRow, ct);
                    break;
                case CommitMessage commit when commit.TransactionEndLsn >= stop:
                    reachedEnd = true;
                    break;
                case LogicalDecodingMessage marker when marker.WalStart >= stop:
                    reachedEnd = true;
                    break;
            }
            connection.SetReplicationStatus(message.WalEnd);
            if (reachedEnd)
                break;
        }
        return ProcessUsage.Since(usage, new ContenderResult { Name = spec.Name, Changes = changes, ReachedEnd = reachedEnd });
    }

    private static async Task ReadAllAsync(ReplicationTuple tuple, CancellationToken ct)
    {
        await foreach (var value in tuple)
        {
            if (value.IsDBNull || value.IsUnchangedToastedValue)
                continue;
            _ = await value.Get<string>(ct);
        }
    }
}
