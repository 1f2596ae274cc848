using System.Net.Sockets;
using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Runtime;

namespace Synchro.Pipeline.Tests.Runtime;

/// <summary>
/// The run loop's retry policy, start-up included: what is waited for without limit, what is retried a bounded number of
/// times, what is fatal at once, and the backoff with jitter.
/// </summary>
public sealed class ReconnectPolicyTests
{
    private static PostgresException Server(string sqlState, string message = "error") => new(message, "FATAL", "FATAL", sqlState);

    private static ReconnectPolicy Policy(CommittedPosition? position = null, int maxConflictRetries = 3, double random = 1.0)
        => new("slot", TimeSpan.FromSeconds(30), maxConflictRetries, position ?? new CommittedPosition(), () => random);

    public static TheoryData<Exception> ServerUnavailable() =>
    [
        Server(PostgresErrorCodes.CannotConnectNow, "the database system is not yet accepting connections"),
        Server(PostgresErrorCodes.CannotConnectNow, "the database system is starting up"),
        Server(PostgresErrorCodes.AdminShutdown, "terminating connection due to administrator command"),
        Server(PostgresErrorCodes.CrashShutdown, "terminating connection because of crash of another server process"),
        Server(PostgresErrorCodes.TooManyConnections, "sorry, too many clients already"),
        Server(PostgresErrorCodes.ConnectionFailure, "connection failure"),
        new NpgsqlException("Failed to connect to 127.0.0.1:1", new SocketException((int)SocketError.ConnectionRefused)),
        new NpgsqlException("Exception while reading from stream", new IOException("Connection reset by peer")),
        new NpgsqlException("Exception while reading from stream", new TimeoutException()),
        // A multi-host connection string during a failover: the old primary gone, the standby not promoted yet.
        new NpgsqlException("No suitable host was found.", new AggregateException(new NpgsqlException("Failed to connect to 127.0.0.1:1", new SocketException((int)SocketError.ConnectionRefused)))),
        new NpgsqlException("No suitable host was found."),
        new SocketException((int)SocketError.HostNotFound),
        new EndOfStreamException(),
    ];

    [Theory]
    [MemberData(nameof(ServerUnavailable))]
    public void A_server_that_is_starting_stopping_unreachable_or_full_is_waited_for_without_limit(Exception error)
    {
        var policy = Policy();

        for (var attempt = 1; attempt <= 50; attempt++)
        {
            Assert.Equal(RetryReason.ConnectionLoss, policy.Decide(error));
            Assert.Equal(attempt, policy.Attempt);
        }
    }

    public static TheoryData<Exception> SetupProblems() =>
    [
        new WalPipelineConfigurationException("wal_level is replica; set it to logical"),
        Server(PostgresErrorCodes.InsufficientPrivilege, "permission denied for table orders"),
        Server(PostgresErrorCodes.InvalidPassword, "password authentication failed for user \"sync\""),
        Server(PostgresErrorCodes.InvalidAuthorizationSpecification, "no pg_hba.conf entry for host"),
        Server(PostgresErrorCodes.InvalidCatalogName, "database \"app\" does not exist"),
        Server(PostgresErrorCodes.UndefinedTable, "relation \"orders\" does not exist"),
        new WalPipelineException("Replication slot 'slot' no longer exists"),
        new InvalidOperationException("a bug"),
    ];

    [Theory]
    [MemberData(nameof(SetupProblems))]
    public void Configuration_privilege_and_other_errors_are_not_retried(Exception error)
    {
        var policy = Policy();

        Assert.Null(policy.Decide(error));
        Assert.Equal(0, policy.Attempt);
    }

    public static TheoryData<Exception> Conflicts() =>
    [
        Server(PostgresErrorCodes.DeadlockDetected, "deadlock detected"),
        Server(PostgresErrorCodes.SerializationFailure, "could not serialize access due to concurrent update"),
        Server(PostgresErrorCodes.LockNotAvailable, "canceling statement due to lock timeout"),
        Server(PostgresErrorCodes.QueryCanceled, "canceling statement due to user request"),
        new StatementTimeoutException(StatementKind.Truncate, TimeSpan.FromMinutes(30), "Applying the TRUNCATE of public.orders",
            Server(PostgresErrorCodes.QueryCanceled, "canceling statement due to statement timeout")),
    ];

    [Theory]
    [MemberData(nameof(Conflicts))]
    public void A_conflict_is_retried_a_bounded_number_of_times_then_stops_the_pipeline_saying_why(Exception error)
    {
        var policy = Policy(maxConflictRetries: 3);

        for (var retry = 1; retry <= 3; retry++)
        {
            Assert.Equal(RetryReason.Conflict, policy.Decide(error));
            Assert.Equal(retry, policy.Conflicts);
        }
        var fatal = Assert.Throws<WalPipelineException>(() => policy.Decide(error));

        Assert.Same(error, fatal.InnerException);
        Assert.Contains("4 times in a row", fatal.Message, StringComparison.Ordinal);
        Assert.Contains("MaxStatementRetries is 3", fatal.Message, StringComparison.Ordinal);
        Assert.Contains(error is PostgresException pg ? pg.SqlState : "TruncateTimeout", fatal.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_retries_means_the_first_conflict_stops_the_pipeline()
    {
        var policy = Policy(maxConflictRetries: 0);

        Assert.Throws<WalPipelineException>(() => policy.Decide(Server(PostgresErrorCodes.DeadlockDetected)));
    }

    [Fact]
    public void A_commit_between_conflicts_starts_the_count_over()
    {
        var position = new CommittedPosition();
        position.Advance(new Lsn(100));
        var policy = Policy(position, maxConflictRetries: 2);
        var deadlock = Server(PostgresErrorCodes.DeadlockDetected);

        for (var round = 1; round <= 5; round++)
        {
            Assert.Equal(RetryReason.Conflict, policy.Decide(deadlock));
            Assert.Equal(RetryReason.Conflict, policy.Decide(deadlock));
            Assert.Equal(2, policy.Conflicts);
            position.Advance(new Lsn(100 + (ulong)round));
        }
    }

    [Fact]
    public void Lost_connections_between_conflicts_do_not_reset_the_count_but_are_never_counted_as_conflicts()
    {
        var policy = Policy(maxConflictRetries: 2);
        var refused = new NpgsqlException("Failed to connect", new SocketException((int)SocketError.ConnectionRefused));

        Assert.Equal(RetryReason.Conflict, policy.Decide(Server(PostgresErrorCodes.LockNotAvailable)));
        Assert.Equal(RetryReason.ConnectionLoss, policy.Decide(refused));
        Assert.Equal(RetryReason.Conflict, policy.Decide(Server(PostgresErrorCodes.LockNotAvailable)));
        Assert.Equal(RetryReason.ConnectionLoss, policy.Decide(refused));
        Assert.Equal(2, policy.Conflicts);
        Assert.Throws<WalPipelineException>(() => policy.Decide(Server(PostgresErrorCodes.LockNotAvailable)));
    }

    [Fact]
    public void The_backoff_doubles_to_the_cap_with_jitter_in_the_upper_half()
    {
        var low = Policy(random: 0.0);
        var high = Policy(random: 1.0);
        var error = Server(PostgresErrorCodes.CannotConnectNow);
        var lows = new List<double>();
        var highs = new List<double>();

        for (var attempt = 0; attempt < 12; attempt++)
        {
            low.Decide(error);
            high.Decide(error);
            lows.Add(low.NextDelay().TotalMilliseconds);
            highs.Add(high.NextDelay().TotalMilliseconds);
        }

        Assert.Equal([200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000, 30000], highs);
        Assert.Equal(highs.Select(h => h / 2), lows);
    }

    [Fact]
    public void Jitter_spreads_the_delays_of_pipelines_that_failed_together()
    {
        var error = Server(PostgresErrorCodes.AdminShutdown);
        var delays = Enumerable.Range(0, 20).Select(_ =>
        {
            var policy = new ReconnectPolicy("slot", TimeSpan.FromSeconds(30), 3, new CommittedPosition());
            for (var i = 0; i < 5; i++)
            {
                policy.Decide(error);
                policy.NextDelay();
            }
            policy.Decide(error);
            return policy.NextDelay().TotalMilliseconds;
        }).ToList();

        Assert.All(delays, d => Assert.InRange(d, 3200, 6400));
        Assert.True(delays.Distinct().Count() > 10, string.Join(", ", delays));
    }

    [Fact]
    public void A_commit_ends_the_episode_and_starts_the_backoff_over()
    {
        var position = new CommittedPosition();
        var policy = Policy(position);
        var error = Server(PostgresErrorCodes.AdminShutdown);
        for (var i = 0; i < 4; i++)
        {
            policy.Decide(error);
            policy.NextDelay();
        }
        var since = policy.Since;
        Assert.Equal(4, policy.Attempt);

        position.Advance(new Lsn(42));
        policy.Decide(error);

        Assert.Equal(1, policy.Attempt);
        Assert.True(policy.Since >= since);
        Assert.Equal(200, policy.NextDelay().TotalMilliseconds);
    }

    [Fact]
    public void The_episode_keeps_its_start_while_attempts_fail_in_a_row()
    {
        var policy = Policy();
        var error = Server(PostgresErrorCodes.CannotConnectNow);
        policy.Decide(error);
        var since = policy.Since;

        policy.AttemptStarting();
        policy.Decide(error);
        policy.AttemptStarting();
        policy.Decide(error);

        Assert.Equal(since, policy.Since);
        Assert.Equal(3, policy.Attempt);
        Assert.InRange(DateTimeOffset.UtcNow - since, TimeSpan.Zero, TimeSpan.FromMinutes(1));
    }

    [Fact]
    public void A_statement_timeout_is_told_from_a_cancel_by_its_message_or_by_how_long_the_statement_ran()
    {
        var timeout = Server(PostgresErrorCodes.QueryCanceled, "canceling statement due to statement timeout");
        var cancel = Server(PostgresErrorCodes.QueryCanceled, "canceling statement due to user request");
        // A server with lc_messages in another language.
        var localized = Server(PostgresErrorCodes.QueryCanceled, "Anfrage wird storniert wegen Zeitüberschreitung der Anweisung");
        var limit = TimeSpan.FromSeconds(5);

        Assert.True(PostgresErrors.IsStatementTimeout(timeout, limit, TimeSpan.FromSeconds(1)));
        Assert.False(PostgresErrors.IsStatementTimeout(cancel, limit, TimeSpan.FromSeconds(1)));
        Assert.True(PostgresErrors.IsStatementTimeout(localized, limit, TimeSpan.FromSeconds(5.1)));
        Assert.False(PostgresErrors.IsStatementTimeout(localized, limit, TimeSpan.FromSeconds(4)));
        Assert.False(PostgresErrors.IsStatementTimeout(Server(PostgresErrorCodes.LockNotAvailable, "canceling statement due to lock timeout"), limit, TimeSpan.FromSeconds(9)));
    }
}
