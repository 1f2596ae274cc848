using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.Postgres;

using static Synchro.Pipeline.Tests.Options.OptionsBinding;

namespace Synchro.Pipeline.Tests.Options;

/// <summary>The statement timeouts by kind, the bounded retries and the health check's retry bound: defaults, binding, validation, what they set.</summary>
public sealed class StatementTimeoutOptionsTests
{
    [Fact]
    public void Defaults_are_the_measured_ones_with_their_margin()
    {
        var options = new WalPipelineOptions();

        Assert.Equal(TimeSpan.FromMinutes(1), options.BatchWriteTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), options.RuleQueryTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), options.ParentLookupTimeout);
        Assert.Equal(TimeSpan.FromMinutes(30), options.TruncateTimeout);
        Assert.Equal(TimeSpan.FromMinutes(2), options.SnapshotChunkTimeout);
        Assert.Equal(TimeSpan.FromMinutes(5), options.ReplayChunkTimeout);
        Assert.Equal(3, options.MaxStatementRetries);
        Assert.Equal(TimeSpan.FromMinutes(5), new WalPipelineHealthCheckOptions().MaxRetryDuration);
        Assert.Null(new WalPipelineHealthCheckOptions().MaxRetryAttempts);
    }

    [Fact]
    public void Every_kind_is_set_by_the_option_its_messages_name()
    {
        var options = new WalPipelineOptions
        {
            BatchWriteTimeout = TimeSpan.FromSeconds(1),
            RuleQueryTimeout = TimeSpan.FromSeconds(2),
            ParentLookupTimeout = TimeSpan.FromSeconds(3),
            TruncateTimeout = TimeSpan.FromSeconds(4),
            SnapshotChunkTimeout = TimeSpan.FromSeconds(5),
            ReplayChunkTimeout = TimeSpan.FromSeconds(6),
        };
        var timeouts = options.StatementTimeouts;

        foreach (var kind in Enum.GetValues<StatementKind>())
        {
            var option = typeof(WalPipelineOptions).GetProperty(StatementTimeouts.OptionName(kind));
            Assert.True(option is not null, $"{kind}: no option {StatementTimeouts.OptionName(kind)}");
            Assert.Equal((TimeSpan)option.GetValue(options)!, timeouts.For(kind));
            var message = StatementTimeoutException.Describe(kind, timeouts.For(kind), "A statement");
            Assert.Contains($"longer than {option.Name} (", message, StringComparison.Ordinal);
            Assert.Contains($"raise {option.Name}", message, StringComparison.Ordinal);
        }
        Assert.Equal("1000", timeouts.SettingFor(StatementKind.BatchWrite));
        Assert.Equal("6000", timeouts.SettingFor(StatementKind.ReplayChunk));
    }

    [Fact]
    public void Binds_the_timeouts_and_the_retries()
    {
        var options = Bind(
            ("Synchro:BatchWriteTimeout", "90s"),
            ("Synchro:RuleQueryTimeout", "5s"),
            ("Synchro:ParentLookupTimeout", "10s"),
            ("Synchro:TruncateTimeout", "1h"),
            ("Synchro:SnapshotChunkTimeout", "3m"),
            ("Synchro:ReplayChunkTimeout", "00:10:00"),
            ("Synchro:MaxStatementRetries", "7"));

        Assert.Equal(TimeSpan.FromSeconds(90), options.BatchWriteTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), options.RuleQueryTimeout);
        Assert.Equal(TimeSpan.FromSeconds(10), options.ParentLookupTimeout);
        Assert.Equal(TimeSpan.FromHours(1), options.TruncateTimeout);
        Assert.Equal(TimeSpan.FromMinutes(3), options.SnapshotChunkTimeout);
        Assert.Equal(TimeSpan.FromMinutes(10), options.ReplayChunkTimeout);
        Assert.Equal(7, options.MaxStatementRetries);
    }

    [Fact]
    public void Out_of_range_values_are_rejected_naming_the_option()
    {
        var options = new WalPipelineOptions
        {
            BatchWriteTimeout = TimeSpan.Zero,
            TruncateTimeout = TimeSpan.FromDays(2),
            RuleQueryTimeout = TimeSpan.FromSeconds(-1),
            MaxStatementRetries = -1,
        };

        var problems = options.FindProblems();

        Assert.Contains("BatchWriteTimeout is 00:00:00; it must be between 1 ms and 1 day", problems);
        Assert.Contains("TruncateTimeout is 2.00:00:00; it must be between 1 ms and 1 day", problems);
        Assert.Contains("RuleQueryTimeout is -00:00:01; it must be between 1 ms and 1 day", problems);
        Assert.Contains("MaxStatementRetries is -1; it must be between 0 (stop at the first) and 100", problems);
    }

    [Fact]
    public void The_client_side_timeout_is_raised_above_every_statement_timeout_and_never_lowered()
    {
        var timeouts = new WalPipelineOptions().StatementTimeouts;

        var raised = new NpgsqlConnectionStringBuilder(timeouts.WithClientBackstop("Host=db;Username=sync;Password=secret"));
        Assert.Equal(31 * 60, raised.CommandTimeout);
        Assert.Equal("secret", raised.Password);

        const string Infinite = "Host=db;Command Timeout=0";
        Assert.Same(Infinite, timeouts.WithClientBackstop(Infinite));
        const string Longer = "Host=db;Command Timeout=7200";
        Assert.Same(Longer, timeouts.WithClientBackstop(Longer));
    }

    private static WalPipelineStatus Status(WalPipelineState state, int attempts, TimeSpan ago) => new()
    {
        State = state,
        Failure = attempts > 0 ? new NpgsqlException("Failed to connect to 127.0.0.1:5432") : null,
        RetryAttempts = attempts,
        RetryingSince = attempts > 0 ? DateTimeOffset.UtcNow - ago : null,
    };

    [Theory]
    [InlineData(WalPipelineState.Starting)]
    [InlineData(WalPipelineState.Reconnecting)]
    public void Retrying_is_degraded_within_the_bound_and_unhealthy_past_it(WalPipelineState state)
    {
        var limits = new WalPipelineHealthCheckOptions { MaxRetryDuration = TimeSpan.FromMinutes(1), MaxRetryAttempts = 10 };

        var fresh = WalPipelineHealthCheck.Evaluate(Status(state, 3, TimeSpan.FromSeconds(20)), limits, HealthStatus.Unhealthy);
        var longer = WalPipelineHealthCheck.Evaluate(Status(state, 3, TimeSpan.FromSeconds(90)), limits, HealthStatus.Unhealthy);
        var many = WalPipelineHealthCheck.Evaluate(Status(state, 10, TimeSpan.FromSeconds(20)), limits, HealthStatus.Unhealthy);

        Assert.Equal(HealthStatus.Degraded, fresh.Status);
        Assert.Contains("Failed to connect", fresh.Description, StringComparison.Ordinal);
        Assert.Equal(HealthStatus.Unhealthy, longer.Status);
        Assert.Contains("for 90 s (3 failed attempt(s), limit 60 s) with nothing committed: Failed to connect", longer.Description, StringComparison.Ordinal);
        Assert.IsType<NpgsqlException>(longer.Exception);
        Assert.Equal(HealthStatus.Unhealthy, many.Status);
        Assert.Contains("10 failed attempts (limit 10)", many.Description, StringComparison.Ordinal);
        Assert.Equal(3, longer.Data["retry_attempts"]);
    }

    [Fact]
    public void Without_a_bound_retrying_stays_degraded_and_a_streaming_pipeline_is_healthy_whatever_came_before()
    {
        var unbounded = new WalPipelineHealthCheckOptions { MaxRetryDuration = null };

        Assert.Equal(HealthStatus.Degraded, WalPipelineHealthCheck.Evaluate(Status(WalPipelineState.Reconnecting, 500, TimeSpan.FromHours(5)), unbounded, HealthStatus.Unhealthy).Status);
        Assert.Equal(HealthStatus.Healthy, WalPipelineHealthCheck.Evaluate(Status(WalPipelineState.Running, 5, TimeSpan.FromHours(1)), new WalPipelineHealthCheckOptions(), HealthStatus.Unhealthy).Status);
    }

    [Fact]
    public void Health_retry_bounds_must_be_positive()
    {
        Assert.False(WalPipelineHealthCheckOptions.IsValid(new() { MaxRetryDuration = TimeSpan.Zero }));
        Assert.False(WalPipelineHealthCheckOptions.IsValid(new() { MaxRetryAttempts = 0 }));
        Assert.True(WalPipelineHealthCheckOptions.IsValid(new() { MaxRetryDuration = null, MaxRetryAttempts = 1 }));
    }
}
