using Synchro.Pipeline.Reading;

namespace Synchro.Pipeline.Tests.Reading;

public sealed class ChangelogCursorTests
{
    [Fact]
    public void A_cursor_without_bucket_positions_is_its_decimal_position()
    {
        Assert.Equal("0", ChangelogCursor.Start.ToString());
        Assert.Equal("9223372036854775807", ChangelogCursor.FromPosition(long.MaxValue).ToString());
        Assert.Same(ChangelogCursor.Start, ChangelogCursor.Parse("0"));
        Assert.Equal(ChangelogCursor.FromPosition(42), ChangelogCursor.Parse("42"));
    }

    [Fact]
    public void Bucket_positions_round_trip_through_the_text_form()
    {
        var cursor = ChangelogCursor.FromPosition(1_000)
            .WithBucketPositions(["user:Zoë", "user:東京", "🚀", "a.b-c_d"], 5_000)
            .WithBucketPositions(["b"], 1_001)
            .WithBucketPositions(["late"], long.MaxValue);

        var text = cursor.ToString();
        var parsed = ChangelogCursor.Parse(text);

        Assert.StartsWith("1000.", text, StringComparison.Ordinal);
        Assert.DoesNotContain(text[5..], c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'));
        Assert.Equal(cursor, parsed);
        Assert.Equal(cursor.GetHashCode(), parsed.GetHashCode());
        Assert.Equal(5_000, parsed.PositionOf("user:東京"));
        Assert.Equal(long.MaxValue, parsed.PositionOf("late"));
        Assert.Equal(1_000, parsed.PositionOf("other"));
        // Equal cursors have equal texts, whatever order their buckets were added in.
        var reordered = ChangelogCursor.FromPosition(1_000).WithBucketPositions(["late"], long.MaxValue).WithBucketPositions(["b"], 1_001)
            .WithBucketPositions(["a.b-c_d", "🚀", "user:東京", "user:Zoë"], 5_000);
        Assert.Equal(text, reordered.ToString());
    }

    [Fact]
    public void Merging_a_snapshot_replaces_the_buckets_positions_and_drops_those_at_the_position()
    {
        var cursor = ChangelogCursor.FromPosition(100).WithBucketPositions(["a", "b"], 300);

        var merged = cursor.WithBucketPositions(["a"], 200).WithBucketPositions(["b"], 100);

        Assert.Equal(200, merged.PositionOf("a"));
        Assert.Equal(["a"], merged.BucketPositions.Keys);
        Assert.Equal("100", cursor.WithBucketPositions(["a", "b"], 100).ToString());
        Assert.NotEqual(cursor, merged);
    }

    [Fact]
    public void Merging_a_snapshot_older_than_the_cursor_says_to_take_it_again()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ChangelogCursor.FromPosition(100).WithBucketPositions(["a"], 99));

        Assert.Contains("Take the snapshot again", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Advancing_drops_the_bucket_positions_it_passes_and_never_goes_back()
    {
        var cursor = ChangelogCursor.FromPosition(10).WithBucketPositions(["a"], 20).WithBucketPositions(["b"], 30);

        Assert.Same(cursor, cursor.Advance(5));
        Assert.Equal(["b"], cursor.Advance(20).BucketPositions.Keys);
        Assert.Equal(ChangelogCursor.FromPosition(31), cursor.Advance(31));
        Assert.Equal(30, cursor.MaxPosition);
    }

    [Theory]
    [InlineData("", "it is empty")]
    [InlineData("-1", "not a non-negative whole number")]
    [InlineData("+1", "not a non-negative whole number")]
    [InlineData(" 1", "not a non-negative whole number")]
    [InlineData("1e3", "not a non-negative whole number")]
    [InlineData("9223372036854775808", "not a non-negative whole number")]
    [InlineData(".AA", "not a non-negative whole number")]
    [InlineData("1.", "not base64url")]
    [InlineData("1.a+b/", "not base64url")]
    [InlineData("1.AWEA", "no valid position above the cursor's")]
    [InlineData("1.AWE", "no valid position above the cursor's")]
    [InlineData("1.BWE", "cut off")]
    [InlineData("1.AWEBAWEC", "names bucket 'a' twice")]
    [InlineData("1.AP8B", "not UTF-8")]
    public void Bad_text_is_refused_with_what_is_wrong(string text, string problem)
    {
        var error = Assert.Throws<FormatException>(() => ChangelogCursor.Parse(text));

        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.Contains("Pass the text of a cursor the reader returned", error.Message, StringComparison.Ordinal);
        Assert.False(ChangelogCursor.TryParse(text, out _));
    }

    [Fact]
    public void Random_text_never_throws_from_TryParse()
    {
        var random = new Random(15);
        const string alphabet = "0123456789.-_ABCDEFabcdefxyz+/=";
        for (var i = 0; i < 20_000; i++)
        {
            var chars = new char[random.Next(0, 24)];
            for (var j = 0; j < chars.Length; j++)
                chars[j] = alphabet[random.Next(alphabet.Length)];
            if (ChangelogCursor.TryParse(new string(chars), out var cursor))
                Assert.Equal(cursor, ChangelogCursor.Parse(cursor.ToString()));
        }
    }

    [Fact]
    public void Snapshot_tokens_round_trip_and_refuse_damaged_text()
    {
        var token = new BucketSnapshotToken(123_456_789, 0xDEAD_BEEF_0123_4567, "user:Zoë", "public.orders", "");

        var parsed = BucketSnapshotToken.Parse(token.ToString());

        Assert.Equal(123_456_789, parsed.Position);
        Assert.Equal(token.BucketSet, parsed.BucketSet);
        Assert.Equal(("user:Zoë", "public.orders", ""), (parsed.BucketId, parsed.TableName, parsed.RecordId));
        var text = token.ToString();
        Assert.False(BucketSnapshotToken.TryParse(text[..^2], out _));
        Assert.False(BucketSnapshotToken.TryParse(text + "AA", out _));
        Assert.False(BucketSnapshotToken.TryParse("", out _));
        Assert.False(BucketSnapshotToken.TryParse(null, out _));
        var error = Assert.Throws<FormatException>(() => BucketSnapshotToken.Parse("not a token"));
        Assert.Contains("start the snapshot again", error.Message, StringComparison.Ordinal);
    }
}
