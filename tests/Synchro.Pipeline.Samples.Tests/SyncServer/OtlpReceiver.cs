using System.Collections.Concurrent;
using System.IO.Compression;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Synchro.Pipeline.Samples.Tests.SyncServer;

/// <summary>
/// A tiny OTLP/HTTP receiver on a loopback port: keeps the protobuf body of every export to <c>/v1/traces</c>,
/// <c>/v1/metrics</c> and <c>/v1/logs</c> and answers with an empty (successful) response.
/// </summary>
/// <remarks>Protobuf keeps strings as their UTF-8 bytes, so a span, instrument or log text is found in the bodies as it is.</remarks>
internal sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, ConcurrentQueue<byte[]>> _exports = new();

    private OtlpReceiver(WebApplication app) => _app = app;

    /// <summary>The base address, for <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
    public Uri Endpoint { get; private set; } = null!;

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var receiver = new OtlpReceiver(builder.Build());
        receiver._app.MapPost("/v1/{signal}", receiver.ReceiveAsync);
        await receiver._app.StartAsync();
        var address = receiver._app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        receiver.Endpoint = new Uri(address);
        return receiver;
    }

    /// <summary>Whether an export of <paramref name="signal"/> (traces, metrics, logs) held <paramref name="text"/>.</summary>
    public bool Received(string signal, string text)
    {
        var needle = System.Text.Encoding.UTF8.GetBytes(text);
        return _exports.TryGetValue(signal, out var bodies) && bodies.Any(body => body.AsSpan().IndexOf(needle) >= 0);
    }

    private async Task ReceiveAsync(string signal, HttpContext context)
    {
        using var body = new MemoryStream();
        var input = context.Request.Headers.ContentEncoding == "gzip" ? new GZipStream(context.Request.Body, CompressionMode.Decompress) : context.Request.Body;
        await input.CopyToAsync(body, context.RequestAborted);
        _exports.GetOrAdd(signal, _ => new()).Enqueue(body.ToArray());
        context.Response.ContentType = "application/x-protobuf";
        context.Response.StatusCode = StatusCodes.Status200OK;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
