namespace Synchro.Pipeline.LoadHarness.Backlog;

/// <summary>The pgbench script of the backlog and the steady state.</summary>
/// <remarks>
/// Every transaction makes exactly three row changes (one inserted order plus two more), in this mix:
/// 30 % +line +update, 10 % +2 lines, 30 % +update +line update, 15 % +line +soft delete, 15 % +line
/// +owner change — overall 60 % inserts, 30 % updates, 5 % soft deletes, 5 % owner changes, and about a
/// third of the changes are child rows. Targets are among the newest thousand rows, which always exist
/// (nothing is hard-deleted and the seed covers the start).
/// </remarks>
internal static class BenchWorkload
{
    public const int ChangesPerTransaction = 3;

    public const string Script = """
        \set uid random(1, 1000)
        \set uid2 random(1, 1000)
        \set back random(1, 1000)
        \set op random(1, 100)
        BEGIN;
        INSERT INTO orders (user_id, title) VALUES ('u' || :uid, 'order of u' || :uid);
        \if :op <= 30
        INSERT INTO order_lines (order_id, product, qty) VALUES (currval('orders_id_seq'), 'product ' || :back, 1);
        UPDATE orders SET total = total + 1 WHERE id = (SELECT last_value FROM orders_id_seq) - :back;
        \elif :op <= 40
        INSERT INTO order_lines (order_id, product, qty) VALUES (currval('orders_id_seq'), 'product a', 1), (currval('orders_id_seq'), 'product b', 2);
        \elif :op <= 70
        UPDATE orders SET total = total + 1 WHERE id = (SELECT last_value FROM orders_id_seq) - :back;
        UPDATE order_lines SET qty = qty + 1 WHERE id = (SELECT last_value FROM order_lines_id_seq) - :back;
        \elif :op <= 85
        INSERT INTO order_lines (order_id, product, qty) VALUES (currval('orders_id_seq'), 'product ' || :back, 1);
        UPDATE orders SET deleted_at = now() WHERE id = (SELECT last_value FROM orders_id_seq) - :back;
        \else
        INSERT INTO order_lines (order_id, product, qty) VALUES (currval('orders_id_seq'), 'product ' || :back, 1);
        UPDATE orders SET user_id = 'u' || :uid2 WHERE id = (SELECT last_value FROM orders_id_seq) - :back;
        \endif
        COMMIT;
        """;
}
