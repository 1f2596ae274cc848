using System.Collections.Concurrent;
using System.Text;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>Logical decoding messages reach the application's handler by prefix, after their batch commits.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class LogicalMessageTests(PostgresServerFixture postgres)
{
    private const string A = "00000000-0000-0000-0000-0000000000b1";
    private const string B = "00000000-0000-0000-0000-0000000000b2";
    private const string C = "00000000-0000-0000-0000-0000000000b3";

    private sealed record Delivered(string Prefix, string Content, long Lsn, bool Transactional, long ChangelogRowsThen);

    [Fact]
    public async Task Committed_and_non_transactional_messages_are_delivered_in_order_and_rolled_back_or_unknown_ones_are_not()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "messages");
        var delivered = new ConcurrentQueue<Delivered>();
        var options = harness.Options();
        options.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        options.MessageHandlers["app.events"] = async (message, ct) =>
        {
            // What a handler sees of the changelog when it runs: the batch holding the message is committed.
            var rows = await Sql.ScalarAsync<long>(harness.ConnectionString, "SELECT count(*) FROM sync_changelog");
            delivered.Enqueue(new Delivered(message.Prefix, Encoding.UTF8.GetString(message.Content.Span), (long)message.Lsn.Value, message.Transactional, rows));
        };
        await harness.StartAsync(options);

        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{A}', 'alice');
            SELECT pg_logical_emit_message(true, 'app.events', 'committed');
            COMMIT;
            """);
        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{B}', 'bob');
            SELECT pg_logical_emit_message(true, 'app.events', 'rolled back');
            ROLLBACK;
            """);
        await harness.ExecuteAsync("SELECT pg_logical_emit_message(false, 'app.events', 'immediate')");
        await harness.ExecuteAsync("SELECT pg_logical_emit_message(true, 'app.other', 'unknown transactional')");
        await harness.ExecuteAsync("SELECT pg_logical_emit_message(false, 'app.other', 'unknown immediate')");
        await harness.ExecuteAsync("SELECT pg_logical_emit_message(false, 'app.eventsx', 'longer prefix')");
        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{C}', 'carol');
            SELECT pg_logical_emit_message(true, 'app.events', 'last');
            COMMIT;
            """);

        await harness.WaitForChangelogAsync(2);
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(delivered.Count >= 3), "three messages", TimeSpan.FromSeconds(20), harness);
        // Anything wrongly delivered would come before a heartbeat written now: wait until the pipeline committed past it.
        await harness.WaitUntilCaughtUpAsync();

        Assert.Equal([$"user:alice orders {A} 1", $"user:carol orders {C} 1"], await harness.ChangelogAsync());
        var messages = delivered.ToArray();
        Assert.Equal(
            [("app.events", "committed", true), ("app.events", "immediate", false), ("app.events", "last", true)],
            messages.Select(m => (m.Prefix, m.Content, m.Transactional)));
        Assert.True(messages[0].Lsn < messages[1].Lsn && messages[1].Lsn < messages[2].Lsn);
        // Delivered after the changelog transaction of its batch committed.
        Assert.True(messages[0].ChangelogRowsThen >= 1);
        Assert.Equal(2, messages[2].ChangelogRowsThen);
    }

    [Fact]
    public async Task A_handler_that_fails_stops_the_pipeline_and_the_message_is_delivered_again_after_a_restart()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "messages_again");
        var options = harness.Options();
        options.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        options.MessageHandlers["app.events"] = (message, ct) => throw new InvalidOperationException("the handler is broken");
        await harness.StartAsync(options);

        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{A}', 'alice');
            SELECT pg_logical_emit_message(true, 'app.events', 'once');
            COMMIT;
            """);
        var error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("The handler for logical messages with prefix 'app.events' failed", error.Message, StringComparison.Ordinal);
        Assert.Contains("the handler is broken", error.Message, StringComparison.Ordinal);
        // The changelog transaction committed before delivery; the server was not told about the position past it.
        Assert.Equal([$"user:alice orders {A} 1"], await harness.ChangelogAsync());
        try
        {
            await harness.StopAsync();
        }
        catch (WalPipelineException)
        {
        }

        var delivered = new ConcurrentQueue<string>();
        var fixedOptions = harness.Options();
        fixedOptions.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        fixedOptions.MessageHandlers["app.events"] = (message, ct) =>
        {
            delivered.Enqueue(Encoding.UTF8.GetString(message.Content.Span));
            return ValueTask.CompletedTask;
        };
        await harness.StartAsync(fixedOptions);
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(!delivered.IsEmpty), "the message again", TimeSpan.FromSeconds(20), harness);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{B}', 'bob')");
        await harness.WaitForChangelogAsync(2);

        Assert.Equal(["once"], delivered);
        // The replayed transaction was skipped: its changelog row exists once.
        Assert.Equal([$"user:alice orders {A} 1", $"user:bob orders {B} 1"], await harness.ChangelogAsync());
    }

    [Fact]
    public void The_heartbeat_prefix_is_the_pipelines_own()
    {
        var options = new WalPipelineOptions();
        options.MessageHandlers["synchro.heartbeat"] = (_, _) => ValueTask.CompletedTask;
        options.MessageHandlers[""] = (_, _) => ValueTask.CompletedTask;

        var problems = options.FindProblems();

        Assert.Contains("MessageHandlers has a handler for 'synchro.heartbeat', the pipeline's own heartbeat prefix; use another prefix", problems);
        Assert.Contains("MessageHandlers has a handler for an empty or NUL-containing prefix; a message prefix is non-empty text", problems);
    }
}
