using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Text;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// A tiny OTLP/HTTP receiver on a loopback port: keeps the protobuf body of every export to <c>/v1/traces</c>,
/// <c>/v1/metrics</c> and <c>/v1/logs</c> and answers with an empty (successful) response.
/// </summary>
/// <remarks>Protobuf keeps strings as their UTF-8 bytes, so a span, instrument or log text is found in the bodies as it is.</remarks>
internal sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly ConcurrentDictionary<string, ConcurrentQueue<byte[]>> _exports = new();
    private readonly Task _serving;

    private OtlpReceiver(HttpListener listener, Uri endpoint)
    {
        _listener = listener;
        Endpoint = endpoint;
        _serving = ServeAsync();
    }

    /// <summary>The base address, for <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
    public Uri Endpoint { get; }

    public static Task<OtlpReceiver> StartAsync()
    {
        // HttpListener takes no port 0: a free one is picked, and picked again should another process take it first.
        for (var attempt = 1; ; attempt++)
        {
            var endpoint = new Uri($"http://127.0.0.1:{LoopbackPort.Free()}/");
            var listener = new HttpListener();
            listener.Prefixes.Add(endpoint.ToString());
            try
            {
                listener.Start();
                return Task.FromResult(new OtlpReceiver(listener, endpoint));
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                listener.Close();
            }
        }
    }

    /// <summary>Whether an export of <paramref name="signal"/> (traces, metrics, logs) held <paramref name="text"/>.</summary>
    public bool Received(string signal, string text)
    {
        var needle = Encoding.UTF8.GetBytes(text);
        return _exports.TryGetValue(signal, out var bodies) && bodies.Any(body => body.AsSpan().IndexOf(needle) >= 0);
    }

    private async Task ServeAsync()
    {
        while (true)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }
            using var body = new MemoryStream();
            var request = context.Request;
            var input = request.Headers["Content-Encoding"] == "gzip" ? new GZipStream(request.InputStream, CompressionMode.Decompress) : request.InputStream;
            await input.CopyToAsync(body);
            const string prefix = "/v1/";
            var path = request.Url!.AbsolutePath;
            if (request.HttpMethod == "POST" && path.StartsWith(prefix, StringComparison.Ordinal))
            {
                _exports.GetOrAdd(path[prefix.Length..], _ => new()).Enqueue(body.ToArray());
                context.Response.ContentType = "application/x-protobuf";
                context.Response.StatusCode = (int)HttpStatusCode.OK;
            }
            else
            {
                context.Response.StatusCode = (int)HttpStatusCode.NotFound;
            }
            context.Response.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Close();
        await _serving;
    }
}
