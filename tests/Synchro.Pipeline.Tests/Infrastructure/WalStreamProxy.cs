using System.Net;
using System.Net.Sockets;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// A TCP proxy between a standby and its primary that can hold back the primary's WAL stream: once <see cref="Hold"/> is called,
/// the bytes a replication connection (its startup packet carries <c>replication</c>) receives from the primary are kept
/// instead of forwarded, and they are dropped when the primary goes away — as a network loses what was in flight when a
/// machine dies. Other connections (the slot synchronisation worker's) pass untouched.
/// </summary>
/// <remarks>The standby must connect with <c>sslmode=disable gssencmode=disable</c>, so that its first packet is the startup packet.</remarks>
internal sealed class WalStreamProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;
    private volatile bool _held;

    public WalStreamProxy(int targetPort)
    {
        _target = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>From now on, the primary's bytes to replication connections stay in the proxy.</summary>
    public void Hold() => _held = true;

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                lock (_connections)
                    _connections.Add(RelayAsync(client));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using var _ = client;
        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            var fromClient = client.GetStream();
            var toServer = server.GetStream();
            // The startup packet: length (4 bytes) and the rest.
            var header = new byte[4];
            await fromClient.ReadExactlyAsync(header, _stop.Token);
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(header);
            var startup = new byte[length - 4];
            await fromClient.ReadExactlyAsync(startup, _stop.Token);
            var replication = System.Text.Encoding.ASCII.GetString(startup).Contains("replication\0", StringComparison.Ordinal);
            await toServer.WriteAsync(header, _stop.Token);
            await toServer.WriteAsync(startup, _stop.Token);
            var up = fromClient.CopyToAsync(toServer, _stop.Token);
            var down = CopyDownAsync(toServer, fromClient, replication);
            await Task.WhenAny(up, down);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or EndOfStreamException)
        {
        }
    }

    private async Task CopyDownAsync(Stream from, Stream to, bool replication)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await from.ReadAsync(buffer, _stop.Token);
            if (read == 0)
                return;
            // Held bytes are never sent: the connection ends without them when the primary goes.
            if (replication && _held)
                continue;
            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] connections;
        lock (_connections)
            connections = [.. _connections];
        await Task.WhenAll(connections);
        _stop.Dispose();
    }
}
