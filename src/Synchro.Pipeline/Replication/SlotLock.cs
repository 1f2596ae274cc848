using System.Globalization;
using System.Text;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// One consumer per slot: a session-level advisory lock keyed by the slot name, held on a dedicated source connection
/// for as long as the pipeline consumes the slot, so a second pipeline on the same slot fails at once with a message
/// naming the holder instead of fighting over the slot.
/// </summary>
/// <remarks>
/// The key is (<see cref="LockClass"/>, <c>hashtext(slot)</c>) in the slot's database. Two slot names with the same
/// 32-bit hash would exclude each other — a false "in use", never two consumers; negligible, and the message names the
/// holder. The lock ends with its session: a server restart or a dropped connection releases it, so every run checks
/// that it still holds it (<see cref="EnsureAsync"/>) and takes it again.
/// </remarks>
internal sealed class SlotLock(string connectionString, string slotName) : IAsyncDisposable
{
    // Unpooled: a pooled connection is reset (DISCARD ALL, which drops advisory locks) only when next used, so closing
    // one would leave the lock held by an idle pooled session.
    private readonly string _connectionString = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;

    /// <summary>The advisory lock's first key: "SYNC" in ASCII, so the pipeline's locks are recognisable in pg_locks.</summary>
    public const int LockClass = 0x53594E43;

    private const string TryLockSql = "SELECT pg_catalog.pg_try_advisory_lock(@class, pg_catalog.hashtext(@slot))";

    private const string PingSql = "SELECT 1";

    // Session locks on two int4 keys show in pg_locks as classid = key 1, objid = key 2, objsubid = 2.
    private const string HolderSql = """
        SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start
        FROM pg_catalog.pg_locks l
        JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
          AND l.classid = @class::oid AND l.objid = pg_catalog.hashtext(@slot)::oid
        LIMIT 1
        """;

    // A process that was killed and restarted at once may find its old session still holding the lock for the moment
    // the server takes to see the closed socket; a live holder is still there after this.
    private static readonly TimeSpan s_holderExitGrace = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan s_retryDelay = TimeSpan.FromMilliseconds(100);

    private NpgsqlConnection? _connection;

    /// <summary>The connection holding the lock, for the slot health watch (which thereby also notices when it is lost); null before the first <see cref="EnsureAsync"/>.</summary>
    public NpgsqlConnection? Connection => _connection;

    /// <summary>Takes the lock, or checks that the session holding it is still alive and takes it again on a new one if not.</summary>
    /// <exception cref="WalPipelineException">Another session holds the lock: another pipeline consumes the slot.</exception>
    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        if (_connection is { } held)
        {
            try
            {
                await using var ping = new NpgsqlCommand(PingSql, held);
                await ping.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (PostgresErrors.IsConnectionLoss(e) || e is InvalidOperationException)
            {
                // The session, and with it the lock, is gone: take it again.
                await held.DisposeAsync().ConfigureAwait(false);
                _connection = null;
            }
        }

        var connection = new NpgsqlConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (var command = new NpgsqlCommand(TryLockSql, connection))
            {
                AddKey(command);
                var deadline = DateTime.UtcNow + s_holderExitGrace;
                while (true)
                {
                    if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
                    {
                        _connection = connection;
                        return;
                    }
                    if (DateTime.UtcNow >= deadline)
                        break;
                    await Task.Delay(s_retryDelay, cancellationToken).ConfigureAwait(false);
                }
            }
            throw new WalPipelineException(await DescribeHolderAsync(connection, cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<string> DescribeHolderAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var holder = new StringBuilder();
        await using (var command = new NpgsqlCommand(HolderSql, connection))
        {
            AddKey(command);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var pid = reader.GetInt32(0);
                var application = reader.IsDBNull(1) ? "" : reader.GetString(1);
                var address = reader.IsDBNull(2) ? "a local socket" : reader.GetString(2);
                holder.Append(CultureInfo.InvariantCulture, $" (backend pid {pid}, application_name '{application}', client {address}");
                if (!reader.IsDBNull(3))
                    holder.Append(CultureInfo.InvariantCulture, $", connected since {reader.GetDateTime(3):u}");
                holder.Append(')');
            }
        }
        return $"Replication slot '{slotName}' is already consumed by another pipeline{holder}; one slot has one consumer. "
            + "Stop the other pipeline, or give this one its own slot (SlotName) and, if it writes to the same changelog, its own changelog database.";
    }

    private void AddKey(NpgsqlCommand command)
    {
        command.Parameters.Add(new NpgsqlParameter<int>("class", NpgsqlDbType.Integer) { TypedValue = LockClass });
        command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
    }

    /// <summary>Releases the lock by closing its session.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
