using System.Collections.Concurrent;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Postgres;

/// <summary>
/// <see cref="WalPipelineOptions.PasswordProvider"/> and <see cref="WalPipelineOptions.ConfigureDataSource"/> on a server that
/// authenticates TCP logins with scram-sha-256 (<see cref="LocalPostgresServer"/>): the provider is asked at every physical
/// connection, a rotated password reaches every connection the pipeline reopens, and a failing provider is named.
/// </summary>
public sealed class ManagedAuthenticationTests(PostgresServerFixture server, ITestOutputHelper output) : IClassFixture<PostgresServerFixture>
{
    private const string Slot = "slot_password_rotation";

    [Fact]
    public async Task The_password_rotates_while_the_pipeline_runs_and_every_connection_logs_in_again_with_the_new_one()
    {
        var superuser = await server.Server.CreateDatabaseAsync("rotation");
        using var workload = await AuditedWorkload.CreateAsync(server.Server, superuser);
        var role = new LoginRole(superuser, "synchro_rotating");
        await role.CreateAsync();
        var logins = new ConcurrentQueue<(PipelineConnectionKind Kind, string Password)>();
        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = role.ConnectionString,
            SlotName = Slot,
            PublicationName = AuditedWorkload.Publication,
            Tables = AuditedWorkload.Registry(),
            MaxBatchRows = 50,
            BatchLinger = TimeSpan.FromMilliseconds(5),
            StatusInterval = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
            PasswordProvider = async (kind, settings, ct) =>
            {
                Assert.Equal(role.Name, settings.Username);
                var password = await role.CurrentPasswordAsync(ct);
                logins.Enqueue((kind, password));
                return password;
            },
        });
        using var stop = new CancellationTokenSource();
        var running = pipeline.RunAsync(stop.Token);
        async Task Alive()
        {
            if (running.IsCompleted)
            {
                await running;
                throw new InvalidOperationException("The pipeline stopped by itself.");
            }
        }

        try
        {
            await PipelineHostProcess.WaitForSlotAsync(workload.ConnectionString, Slot);
            await workload.RunPgbenchAsync(seconds: 2, rate: 100);
            var first = role.Password;

            using (var pgbench = workload.StartPgbench(seconds: 8, rate: 100))
            {
                await Task.Delay(TimeSpan.FromSeconds(2));
                var before = logins.Count;
                await role.RotateAsync();
                var ended = await role.TerminateSessionsAsync();
                output.WriteLine($"rotated the password; ended {string.Join(", ", ended)}");
                Assert.Contains("walsender", ended);
                await pgbench.WaitForExitAsync();
                Assert.Equal(0, pgbench.ExitCode);

                await workload.InsertMarkerAsync();
                await workload.WaitForMarkerAsync(Alive, TimeSpan.FromMinutes(1));
                var after = logins.Skip(before).ToList();
                output.WriteLine($"provider calls: {logins.Count} in all, {after.Count} after the rotation: "
                    + string.Join(", ", after.GroupBy(l => l.Kind).Select(g => $"{g.Key} {g.Count()}")));
                Assert.All(after, l => Assert.Equal(role.Password, l.Password));
                foreach (var kind in new[] { PipelineConnectionKind.Source, PipelineConnectionKind.Changelog, PipelineConnectionKind.Replication, PipelineConnectionKind.SlotLock, PipelineConnectionKind.ChangelogLock })
                    Assert.Contains(after, l => l.Kind == kind);
            }

            // The sessions the pipeline holds now all logged in after the rotation, the walsender among them.
            var sessions = await Sql.RowsAsync(superuser, $"SELECT backend_type || ' ' || (backend_start > '{role.RotatedAt:O}'::timestamptz)::text FROM pg_stat_activity WHERE usename = '{role.Name}'");
            Assert.Contains("walsender true", sessions);
            Assert.DoesNotContain(sessions, s => s.EndsWith(" false", StringComparison.Ordinal));

            var refused = await Assert.ThrowsAsync<PostgresException>(() => role.LogInAsync(first));
            Assert.Equal(PostgresErrorCodes.InvalidPassword, refused.SqlState);
            Assert.True(pipeline.GetStatus().Reconnects >= 1, "the pipeline did not reconnect");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAny(running);
        }
        await running;

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 500);
        output.WriteLine($"{rows} changelog rows match the audit trail");
    }

    [Fact]
    public async Task The_provider_is_asked_at_every_physical_connection_and_not_when_a_pooled_one_is_reused()
    {
        var superuser = await server.Server.CreateDatabaseAsync("provider_calls");
        var role = new LoginRole(superuser, "synchro_counted");
        await role.CreateAsync();
        var calls = new ConcurrentDictionary<PipelineConnectionKind, int>();
        var options = new WalPipelineOptions
        {
            ConnectionString = role.ConnectionString,
            PasswordProvider = (kind, _, _) =>
            {
                calls.AddOrUpdate(kind, 1, (_, n) => n + 1);
                return ValueTask.FromResult(role.Password);
            },
        };
        var connections = options.Connections;

        await using (var source = connections.DataSource(role.ConnectionString, PipelineConnectionKind.Source))
        {
            var open = new List<NpgsqlConnection>();
            for (var i = 0; i < 3; i++)
                open.Add(await source.OpenConnectionAsync());
            var pids = open.Select(c => c.ProcessID).ToHashSet();
            foreach (var connection in open)
                await connection.DisposeAsync();
            Assert.Equal(3, pids.Count);
            Assert.Equal(3, calls[PipelineConnectionKind.Source]);

            // Back from the pool: the same physical connection, no login.
            await using (var reused = await source.OpenConnectionAsync())
                Assert.Contains(reused.ProcessID, pids);
            Assert.Equal(3, calls[PipelineConnectionKind.Source]);

            source.Clear();
            await using (await source.OpenConnectionAsync())
                Assert.Equal(4, calls[PipelineConnectionKind.Source]);
        }

        await using (var locks = connections.Unpooled(role.ConnectionString, PipelineConnectionKind.SlotLock))
        {
            for (var i = 0; i < 2; i++)
            {
                await using var connection = await locks.OpenConnectionAsync();
            }
            Assert.Equal(2, calls[PipelineConnectionKind.SlotLock]);
        }

        for (var i = 0; i < 2; i++)
        {
            await using var replication = await connections.ReplicationAsync(role.ConnectionString, CancellationToken.None);
            await replication.Open();
            Assert.Equal(role.Name, await replication.Show("session_authorization"));
        }
        Assert.Equal(2, calls[PipelineConnectionKind.Replication]);
    }

    [Fact]
    public async Task A_provider_that_throws_stops_the_pipeline_with_a_message_naming_the_hook_and_the_connection()
    {
        var superuser = await server.Server.CreateDatabaseAsync("provider_throws");
        var role = new LoginRole(superuser, "synchro_refused");
        await role.CreateAsync();
        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = role.ConnectionString,
            SlotName = "slot_provider_throws",
            PublicationName = "none_needed",
            Tables = AuditedWorkload.Registry(),
            PasswordProvider = (_, _, _) => throw new InvalidOperationException("the token service refused the instance role"),
        });

        var error = await Assert.ThrowsAsync<WalPipelineException>(() => pipeline.RunAsync());
        output.WriteLine(error.Message);
        Assert.Contains("WalPipelineOptions.PasswordProvider threw InvalidOperationException: the token service refused the instance role", error.Message, StringComparison.Ordinal);
        Assert.Contains($"as {role.Name}", error.Message, StringComparison.Ordinal);
        Assert.Equal(WalPipelineState.Failed, pipeline.GetStatus().State);
    }

    [Fact]
    public async Task A_password_provider_set_on_the_builder_is_refused_for_the_replication_connection_it_could_not_reach()
    {
        var superuser = await server.Server.CreateDatabaseAsync("builder_provider");
        var role = new LoginRole(superuser, "synchro_builder");
        await role.CreateAsync();
        var options = new WalPipelineOptions
        {
            ConnectionString = role.ConnectionString,
            ConfigureDataSource = (builder, _) => builder.UsePasswordProvider(_ => role.Password, (_, _) => ValueTask.FromResult(role.Password)),
        };

        // Pooled sessions take the builder's provider; the replication connection would not, and says so.
        await using (var source = options.Connections.DataSource(role.ConnectionString, PipelineConnectionKind.Source))
        await using (var connection = await source.OpenConnectionAsync())
            Assert.Equal(role.Name, connection.UserName);
        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => options.Connections.ReplicationAsync(role.ConnectionString, CancellationToken.None));
        output.WriteLine(error.Message);
        Assert.Contains("ConfigureDataSource set a password provider for the replication connection", error.Message, StringComparison.Ordinal);
        Assert.Contains("WalPipelineOptions.PasswordProvider", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A login role with a password of its own; the pipeline connects as it without a password in the string.</summary>
    private sealed class LoginRole(string superuser, string name)
    {
        // Held while the password changes, so that no connection is given a password the server does not take yet or any more.
        private readonly SemaphoreSlim _rotating = new(1, 1);

        public string Name => name;

        public string Password { get; private set; } = NewPassword();

        public DateTimeOffset RotatedAt { get; private set; }

        public string ConnectionString => new NpgsqlConnectionStringBuilder(superuser) { Username = name, Password = null, Passfile = null }.ConnectionString;

        // The privileges are not the subject here: a superuser, so that it may create what the pipeline creates.
        public Task CreateAsync() => Sql.ExecuteAsync(superuser, $"DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN SUPERUSER REPLICATION PASSWORD '{Password}'");

        public async ValueTask<string> CurrentPasswordAsync(CancellationToken ct)
        {
            await _rotating.WaitAsync(ct);
            try
            {
                return Password;
            }
            finally
            {
                _rotating.Release();
            }
        }

        public async Task RotateAsync()
        {
            await _rotating.WaitAsync();
            try
            {
                var next = NewPassword();
                await Sql.ExecuteAsync(superuser, $"ALTER ROLE {name} PASSWORD '{next}'");
                Password = next;
                RotatedAt = DateTimeOffset.UtcNow;
            }
            finally
            {
                _rotating.Release();
            }
        }

        /// <summary>Ends every session of the role, walsender included, so that each logs in again; returns their backend types.</summary>
        public Task<List<string>> TerminateSessionsAsync()
            => Sql.RowsAsync(superuser, $"WITH own AS MATERIALIZED (SELECT pid, backend_type FROM pg_stat_activity WHERE usename = '{name}') SELECT backend_type FROM own WHERE pg_terminate_backend(pid)");

        public async Task LogInAsync(string password)
        {
            await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Password = password, Pooling = false }.ConnectionString);
            await connection.OpenAsync();
        }

        private static string NewPassword() => "pw-" + Guid.NewGuid().ToString("N");
    }
}
