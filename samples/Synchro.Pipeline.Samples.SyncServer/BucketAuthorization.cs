namespace Synchro.Pipeline.Samples.SyncServer;

/// <summary>
/// Which buckets a caller may read. This is the application's decision, not the library's: every request of the
/// sync endpoints asks <see cref="ReadableBuckets"/> and refuses a bucket it does not list.
/// </summary>
/// <remarks>
/// DEMO ONLY: the user is whoever the <see cref="UserHeader"/> header names, and a user may read their own bucket
/// (<c>user:&lt;id&gt;</c>, the bucket an <c>OwnerColumn</c> registration writes) and <c>global</c>. A real application
/// takes the user from its authentication (<c>HttpContext.User</c>, after <c>UseAuthentication</c>) and the buckets
/// from its own data (teams, shares, tenants).
/// </remarks>
public static class BucketAuthorization
{
    /// <summary>The header that names the user (demo only: anyone can send it).</summary>
    public const string UserHeader = "X-Sync-User";

    /// <summary>The bucket every user may read.</summary>
    public const string GlobalBucket = "global";

    /// <summary>The prefix of a user's own bucket (the default <c>BucketPrefix</c> of a table registration).</summary>
    public const string UserBucketPrefix = "user:";

    /// <summary>The buckets the caller of <paramref name="context"/> may read; null when the caller is not known (401).</summary>
    public static IReadOnlySet<string>? ReadableBuckets(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var user = context.Request.Headers[UserHeader].ToString();
        if (user.Length == 0)
            return null;
        return new HashSet<string>(StringComparer.Ordinal) { UserBucketPrefix + user, GlobalBucket };
    }
}
