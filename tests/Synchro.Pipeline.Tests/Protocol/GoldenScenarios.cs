using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>A workload whose pgoutput stream is captured as a golden fixture.</summary>
/// <param name="Name">The fixture's file name (without extension).</param>
/// <param name="Options">The pgoutput options the stream is peeked with.</param>
/// <param name="Setup">Schema statements, run before the slot exists.</param>
/// <param name="Workload">Statements run in order on one connection after the slot is created.</param>
/// <param name="TwoPhaseSlot">Create the slot with two-phase decoding enabled.</param>
/// <param name="SmallDecodingMemory">Peek with <c>logical_decoding_work_mem = 64kB</c> so large transactions are streamed.</param>
internal sealed record GoldenScenario(
    string Name,
    PgOutputOptions Options,
    string[] Setup,
    string[] Workload,
    bool TwoPhaseSlot = false,
    bool SmallDecodingMemory = false)
{
    public override string ToString() => Name;
}

/// <summary>The golden fixtures: each covers a part of the protocol with a real server's bytes.</summary>
internal static class GoldenScenarios
{
    // 500 rows of ~60 bytes exceed the 64 kB decoding memory, so the transaction is streamed.
    private const string StreamedRows = "INSERT INTO big SELECT g, 'user:' || (g % 10), repeat('p', 10) FROM generate_series({0}, {1}) g";

    private static readonly string[] s_rowsSetup =
    [
        "CREATE TABLE accounts (id int PRIMARY KEY, owner_id text NOT NULL, balance int)",
        "CREATE TABLE audit (id int PRIMARY KEY, owner_id text, note text)",
        "ALTER TABLE audit REPLICA IDENTITY FULL",
        "CREATE TABLE tagged (code text NOT NULL, owner_id text, label text)",
        "CREATE UNIQUE INDEX tagged_code ON tagged (code)",
        "ALTER TABLE tagged REPLICA IDENTITY USING INDEX tagged_code",
    ];

    private static readonly string[] s_rowsWorkload =
    [
        "INSERT INTO accounts VALUES (1, 'u1', 10), (2, 'u2', 20)",
        "UPDATE accounts SET balance = 11 WHERE id = 1",
        "UPDATE accounts SET id = 20, owner_id = 'u3' WHERE id = 2",
        "INSERT INTO audit VALUES (1, 'u1', 'first')",
        "UPDATE audit SET note = 'second' WHERE id = 1",
        "INSERT INTO tagged VALUES ('a', 'u1', 'x')",
        "UPDATE tagged SET code = 'b' WHERE code = 'a'",
        "BEGIN",
        "DELETE FROM accounts WHERE id = 20",
        "DELETE FROM audit WHERE id = 1",
        "DELETE FROM tagged WHERE code = 'b'",
        "COMMIT",
    ];

    public static IReadOnlyList<GoldenScenario> All { get; } =
    [
        .. Enumerable.Range(1, 3).Select(v => new GoldenScenario($"rows.v{v}", new PgOutputOptions(v), s_rowsSetup, s_rowsWorkload)),
        new("types.v1", new PgOutputOptions(1),
        [
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
            "CREATE TABLE types (id uuid PRIMARY KEY, name text, amount numeric(12,3), at timestamptz, doc jsonb, tags text[], scores int4[], blob bytea, flag bool, big int8, feeling mood, code varchar(20), ratio float8)",
        ],
        [
            "SET TIME ZONE 'UTC'",
            """
            INSERT INTO types VALUES ('9f1c2a4e-8d3b-4c5e-a1f0-123456789abc', 'Zoë — 東京 🚀 "quoted" \ backslash', 12345.678,
                '2026-11-24 10:30:00.123456+00', '{"a": [1, 2.5, null], "b": {"c": "ü"}}', ARRAY['x', 'y z', NULL], ARRAY[1, -2, 3],
                '\x00ff10'::bytea, true, 9223372036854775807, 'happy', 'code-1', -1.5e-10)
            """,
            "INSERT INTO types (id) VALUES ('00000000-0000-0000-0000-000000000000')",
        ]),
        new("binary.v1", new PgOutputOptions(1, binary: true),
        [
            "CREATE TABLE items (id uuid PRIMARY KEY, n int4, big int8, small int2, name text, label varchar(10), amount numeric, at timestamptz, flag bool, blob bytea)",
        ],
        [
            "INSERT INTO items VALUES ('9f1c2a4e-8d3b-4c5e-a1f0-123456789abc', 42, -7, 3, 'név', 'lbl', 1.5, '2026-11-24 10:30:00+00', false, '\\x0102'::bytea)",
            "INSERT INTO items (id) VALUES ('00000000-0000-0000-0000-000000000001')",
        ]),
        new("toast.v1", new PgOutputOptions(1),
        [
            "CREATE TABLE docs (id int PRIMARY KEY, owner_id text, body text)",
            "ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL",
        ],
        [
            "INSERT INTO docs VALUES (1, 'u1', repeat('toast-', 1000))",
            "UPDATE docs SET owner_id = 'u2' WHERE id = 1",
            "DELETE FROM docs WHERE id = 1",
        ]),
        new("truncate.v1", new PgOutputOptions(1),
        [
            "CREATE TABLE parents (id serial PRIMARY KEY, owner_id text)",
            "CREATE TABLE children (id serial PRIMARY KEY, parent_id int REFERENCES parents (id))",
            "CREATE TABLE others (id int PRIMARY KEY)",
        ],
        [
            "INSERT INTO parents (owner_id) VALUES ('u1')",
            "INSERT INTO children (parent_id) VALUES (1)",
            "INSERT INTO others VALUES (1)",
            "TRUNCATE parents, children, others",
            "TRUNCATE parents RESTART IDENTITY CASCADE",
        ]),
        new("messages.v1", new PgOutputOptions(1, messages: true),
        [
            "CREATE TABLE notes (id int PRIMARY KEY)",
        ],
        [
            "SELECT pg_logical_emit_message(false, 'synchro', 'outside any transaction')",
            "BEGIN",
            "INSERT INTO notes VALUES (1)",
            "SELECT pg_logical_emit_message(true, 'synchro', 'transactional ✓')",
            "SELECT pg_logical_emit_message(false, 'synchro/binary', '\\x00ff'::bytea)",
            "COMMIT",
        ]),
        new("origin.v1", new PgOutputOptions(1),
        [
            "CREATE TABLE replicated (id int PRIMARY KEY)",
            "SELECT pg_replication_origin_create('upstream-sync')",
        ],
        [
            "SELECT pg_replication_origin_session_setup('upstream-sync')",
            "BEGIN",
            "SELECT pg_replication_origin_xact_setup('0/ABCDEF', '2026-11-24 10:00:00+00')",
            "INSERT INTO replicated VALUES (1)",
            "COMMIT",
            "SELECT pg_replication_origin_session_reset()",
        ]),
        new("streaming.v2", new PgOutputOptions(2, PgOutputStreaming.On),
        [
            "CREATE TABLE big (id int PRIMARY KEY, owner_id text, payload text)",
        ],
        [
            "BEGIN", string.Format(null, StreamedRows, 1, 500), "COMMIT",
            "BEGIN", string.Format(null, StreamedRows, 1001, 1500), "ROLLBACK",
            "BEGIN", "INSERT INTO big VALUES (2001, 'user:1', 'kept')", "SAVEPOINT s1",
            string.Format(null, StreamedRows, 3001, 3500), "ROLLBACK TO SAVEPOINT s1",
            "INSERT INTO big VALUES (2002, 'user:2', 'kept too')", "COMMIT",
        ],
        SmallDecodingMemory: true),
        new("twophase.v3", new PgOutputOptions(3, PgOutputStreaming.On, twoPhase: true),
        [
            "CREATE TABLE big (id int PRIMARY KEY, owner_id text, payload text)",
        ],
        [
            "BEGIN", "INSERT INTO big VALUES (1, 'user:1', 'committed')", "PREPARE TRANSACTION 'synchro-commit'",
            "COMMIT PREPARED 'synchro-commit'",
            "BEGIN", "INSERT INTO big VALUES (2, 'user:2', 'rolled back')", "PREPARE TRANSACTION 'synchro-rollback'",
            "ROLLBACK PREPARED 'synchro-rollback'",
            "BEGIN", string.Format(null, StreamedRows, 1001, 1500), "PREPARE TRANSACTION 'synchro-streamed'",
            "COMMIT PREPARED 'synchro-streamed'",
        ],
        TwoPhaseSlot: true,
        SmallDecodingMemory: true),
    ];

    /// <summary>The benchmark stream: realistic ~10-column rows, inserted then updated.</summary>
    public static GoldenScenario BenchRows { get; } = new("bench-rows.v1", new PgOutputOptions(1),
    [
        """
        CREATE TABLE orders (id uuid PRIMARY KEY, owner_id uuid NOT NULL, title text NOT NULL, status text NOT NULL,
            amount numeric(12,2) NOT NULL, quantity int NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
            deleted_at timestamptz, note text)
        """,
    ],
    [
        "SET TIME ZONE 'UTC'",
        """
        INSERT INTO orders SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
            ('00000000-0000-4000-9000-' || lpad(to_hex(g % 97), 12, '0'))::uuid, 'Order number ' || g, 'open',
            (g * 7.31)::numeric(12,2), g % 13 + 1, '2026-11-24 10:00:00+00'::timestamptz + g * interval '1 second',
            '2026-11-24 10:00:00+00'::timestamptz + g * interval '1 second', NULL,
            CASE WHEN g % 3 = 0 THEN NULL ELSE 'deliver to the back door, ring twice' END
        FROM generate_series(1, 1000) g
        """,
        "UPDATE orders SET status = 'paid', updated_at = updated_at + interval '1 hour', quantity = quantity + 1",
    ]);

    /// <summary>The benchmark workload peeked with binary tuples: the same rows, every value in its type's send format.</summary>
    public static GoldenScenario BenchRowsBinary { get; } = BenchRows with { Name = "bench-rows-binary.v1", Options = new PgOutputOptions(1, binary: true) };
}
