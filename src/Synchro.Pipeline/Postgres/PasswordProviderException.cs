using System.Globalization;
using System.Net.Sockets;
using Npgsql;

namespace Synchro.Pipeline.Postgres;

/// <summary>
/// <see cref="WalPipelineOptions.PasswordProvider"/> threw or returned null; the message names the hook and the connection.
/// Npgsql wraps it in an <see cref="NpgsqlException"/> when it called the provider while opening a pooled connection.
/// </summary>
internal sealed class PasswordProviderException(PipelineConnectionKind kind, NpgsqlConnectionStringBuilder settings, Exception? error)
    : Exception(Describe(kind, settings, error), error)
{
    /// <summary>The connection the password was asked for.</summary>
    public PipelineConnectionKind Kind { get; } = kind;

    /// <summary>
    /// Whether the provider failed the way a token endpoint that is briefly unreachable does (a network or time-out error),
    /// which is waited for like a lost connection; anything else is a bug or a configuration error of the provider.
    /// </summary>
    public bool IsTransient => InnerException is IOException or SocketException or TimeoutException or HttpRequestException;

    private static string Describe(PipelineConnectionKind kind, NpgsqlConnectionStringBuilder settings, Exception? error)
    {
        var target = string.Create(CultureInfo.InvariantCulture, $"{settings.Host}:{settings.Port}/{settings.Database} as {settings.Username}");
        var what = error is null ? "returned null" : $"threw {error.GetType().Name}: {error.Message}";
        return $"{nameof(WalPipelineOptions)}.{nameof(WalPipelineOptions.PasswordProvider)} {what} (asked for the password of the "
            + $"{PostgresConnections.Describe(kind)} to {target}). Fix the provider: it is called before every new physical connection "
            + "and must return the current password or token.";
    }
}
