using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>Creates and drops the pipeline's logical replication slot through SQL on a normal connection.</summary>
internal static class ReplicationSlots
{
    /// <summary>The output plugin the pipeline decodes.</summary>
    public const string Plugin = "pgoutput";

    private const string ExistsSql = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = @slot)";

    private const string CreateSql = "SELECT pg_catalog.pg_create_logical_replication_slot(@slot, 'pgoutput', false, @twoPhase)";

    // PostgreSQL 17's fifth argument.
    private const string CreateFailoverSql = "SELECT pg_catalog.pg_create_logical_replication_slot(@slot, 'pgoutput', false, @twoPhase, true)";

    // With the server's flushed WAL end (replayed, on a standby): pg_replication_slot_advance moves a slot to that end when
    // asked for a later position, which would discard every change up to it.
    private const string SlotPositionSql = """
        SELECT active, confirmed_flush_lsn,
               CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_flush_lsn() END
        FROM pg_catalog.pg_replication_slots
        WHERE slot_name = @slot
        """;

    private const string AdvanceSql = "SELECT pg_catalog.pg_replication_slot_advance(@slot, @position)";

    private const string DropSql = """
        SELECT pg_catalog.pg_drop_replication_slot(slot_name)
        FROM pg_catalog.pg_replication_slots
        WHERE slot_name = @slot
        """;

    /// <summary>
    /// Creates the permanent logical slot <paramref name="slotName"/> with the pgoutput plugin unless a slot of that name exists.
    /// </summary>
    /// <param name="source">Sessions on the source database.</param>
    /// <param name="slotName">The slot name; must pass <see cref="PgIdentifier.IsValid"/>.</param>
    /// <param name="twoPhase">Whether the slot decodes prepared transactions at PREPARE TRANSACTION.</param>
    /// <param name="failover">Create a failover slot (PostgreSQL 17+), which standbys with <c>sync_replication_slots</c> keep a copy of.</param>
    /// <param name="ct">Cancels the creation.</param>
    /// <returns>
    /// <see langword="true"/> when this call created the slot; <see langword="false"/> when it existed, including when a
    /// concurrent creator won the race. An existing slot is not inspected: <see cref="StartupChecks"/> does that.
    /// </returns>
    /// <remarks>Creating a logical slot waits for transactions running at that moment to finish.</remarks>
    /// <exception cref="WalPipelineConfigurationException"><paramref name="slotName"/> is not a valid slot name.</exception>
    public static async Task<bool> CreateIfMissingAsync(NpgsqlDataSource source, string slotName, bool twoPhase, bool failover, CancellationToken ct)
    {
        ThrowIfInvalid(slotName);
        var connection = await source.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            if (await ExistsAsync(connection, slotName, ct).ConfigureAwait(false))
                return false;

            var command = new NpgsqlCommand(failover ? CreateFailoverSql : CreateSql, connection);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
                command.Parameters.Add(new NpgsqlParameter<bool>("twoPhase", NpgsqlDbType.Boolean) { TypedValue = twoPhase });
                try
                {
                    await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                    return true;
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateObject)
                {
                    return false;
                }
            }
        }
    }

    /// <summary>As <see cref="CreateIfMissingAsync(NpgsqlDataSource, string, bool, bool, CancellationToken)"/>, on a connection string as it is (for tests and tools).</summary>
    public static async Task<bool> CreateIfMissingAsync(string connectionString, string slotName, bool twoPhase, bool failover, CancellationToken ct)
    {
        var source = PostgresConnections.Plain.Unpooled(connectionString, PipelineConnectionKind.Source);
        await using (source.ConfigureAwait(false))
            return await CreateIfMissingAsync(source, slotName, twoPhase, failover, ct).ConfigureAwait(false);
    }

    /// <summary>As <see cref="CreateIfMissingAsync(NpgsqlDataSource, string, bool, bool, CancellationToken)"/>, without failover.</summary>
    public static Task<bool> CreateIfMissingAsync(string connectionString, string slotName, bool twoPhase, CancellationToken ct)
        => CreateIfMissingAsync(connectionString, slotName, twoPhase, failover: false, ct);

    /// <summary>Drops the slot <paramref name="slotName"/> if it exists (for tests and tools).</summary>
    /// <param name="source">Sessions on any database of the server.</param>
    /// <param name="slotName">The slot name; must pass <see cref="PgIdentifier.IsValid"/>.</param>
    /// <param name="ct">Cancels the drop.</param>
    /// <returns>A task completing once the slot is gone.</returns>
    /// <remarks>The WAL the slot held back becomes removable; a pipeline that resumes on a recreated slot has lost the changes in between.</remarks>
    /// <exception cref="WalPipelineConfigurationException"><paramref name="slotName"/> is not a valid slot name.</exception>
    /// <exception cref="PostgresException">The slot is in use (SqlState 55006, object_in_use).</exception>
    public static async Task DropAsync(NpgsqlDataSource source, string slotName, CancellationToken ct)
    {
        ThrowIfInvalid(slotName);
        var connection = await source.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var command = new NpgsqlCommand(DropSql, connection);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>As <see cref="DropAsync(NpgsqlDataSource, string, CancellationToken)"/>, on a connection string as it is (for tests and tools).</summary>
    public static async Task DropAsync(string connectionString, string slotName, CancellationToken ct)
    {
        var source = PostgresConnections.Plain.Unpooled(connectionString, PipelineConnectionKind.Source);
        await using (source.ConfigureAwait(false))
            await DropAsync(source, slotName, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Moves the slot's confirmed position forward to <paramref name="position"/> once no walsender holds it — the
    /// last status update of a pipeline that stopped, sent through SQL because its stream is closed by then.
    /// </summary>
    /// <remarks>Invariant 2 of docs/architecture.md: a position past the server's flushed WAL is never sent.</remarks>
    /// <returns>
    /// What happened, and the server's WAL end when it was read: <see cref="SlotConfirmation.NotWritten"/> when the server
    /// has not written <paramref name="position"/> (the slot is left as it is).
    /// </returns>
    /// <exception cref="OperationCanceledException">The slot stayed active (its walsender did not exit) until <paramref name="ct"/> fired.</exception>
    public static async Task<(SlotConfirmation Outcome, Lsn WalEnd)> ConfirmAsync(NpgsqlDataSource source, string slotName, Lsn position, CancellationToken ct)
    {
        var connection = await source.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            Lsn walEnd;
            while (true)
            {
                await using (var query = new NpgsqlCommand(SlotPositionSql, connection))
                {
                    query.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
                    await using var reader = await query.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                        return (SlotConfirmation.NotNeeded, Lsn.Invalid);
                    walEnd = reader.IsDBNull(2) ? Lsn.Invalid : reader.GetFieldValue<NpgsqlLogSequenceNumber>(2);
                    if (position > walEnd)
                        return (SlotConfirmation.NotWritten, walEnd);
                    if ((Lsn)reader.GetFieldValue<NpgsqlLogSequenceNumber>(1) >= position)
                        return (SlotConfirmation.NotNeeded, walEnd);
                    if (reader.GetBoolean(0))
                    {
                        // The walsender of the stream just closed is still exiting.
                        await Task.Delay(50, ct).ConfigureAwait(false);
                        continue;
                    }
                }
                await using var advance = new NpgsqlCommand(AdvanceSql, connection);
                advance.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
                advance.Parameters.Add(new NpgsqlParameter<NpgsqlLogSequenceNumber>("position", NpgsqlDbType.PgLsn) { TypedValue = position });
                try
                {
                    await advance.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                    return (SlotConfirmation.Advanced, walEnd);
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse)
                {
                    // Another consumer took the slot meanwhile: it confirms for itself.
                    return (SlotConfirmation.NotNeeded, walEnd);
                }
            }
        }
    }

    private static async Task<bool> ExistsAsync(NpgsqlConnection connection, string slotName, CancellationToken ct)
    {
        var command = new NpgsqlCommand(ExistsSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
            return (bool)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }
    }

    private static void ThrowIfInvalid(string slotName)
    {
        if (!PgIdentifier.IsValid(slotName))
            throw new WalPipelineConfigurationException(StartupChecks.InvalidSlotName(slotName));
    }
}

/// <summary>What <see cref="ReplicationSlots.ConfirmAsync"/> did.</summary>
internal enum SlotConfirmation
{
    /// <summary>The slot was advanced to the position.</summary>
    Advanced,

    /// <summary>Nothing to do: the slot was there already, is gone, or another consumer holds it.</summary>
    NotNeeded,

    /// <summary>Refused: the server has not written the position, so the slot was left as it is.</summary>
    NotWritten,
}
