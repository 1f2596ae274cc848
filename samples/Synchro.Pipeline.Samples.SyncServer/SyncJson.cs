using System.Buffers;
using System.IO.Pipelines;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Synchro.Pipeline.Samples.SyncServer;

/// <summary>
/// A response body written with one <see cref="Utf8JsonWriter"/> straight into the response's <see cref="PipeWriter"/>:
/// no object per row, and an awaited flush every <see cref="FlushBytes"/> so a page reaches the socket in bounded pieces.
/// </summary>
/// <remarks>
/// JSON is one object; NDJSON (<c>application/x-ndjson</c>) is one object per line, so the writer is reset after each
/// line (it would otherwise separate top-level values with commas).
/// </remarks>
internal sealed class SyncJson : IDisposable
{
    public const string JsonMediaType = "application/json; charset=utf-8";

    // Small enough to bound what sits in the response pipe, large enough that flushes stay rare (tens of rows).
    private const int FlushBytes = 16 * 1024;

    // Names and ids are written as they are, not \u-escaped; the body is JSON, never embedded in HTML.
    private static readonly JsonWriterOptions s_options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly PipeWriter _body;
    private readonly Utf8JsonWriter _writer;
    private readonly CancellationToken _cancellationToken;
    // Bytes handed to the pipe since the last awaited flush: NDJSON lines ended (the writer restarts at 0 each line),
    // or, in JSON, the writer's committed count at that flush.
    private long _unflushedLines;
    private long _committedAtFlush;

    private SyncJson(HttpResponse response, bool ndjson)
    {
        Ndjson = ndjson;
        _body = response.BodyWriter;
        _writer = new Utf8JsonWriter(_body, s_options);
        _cancellationToken = response.HttpContext.RequestAborted;
    }

    public bool Ndjson { get; }

    /// <summary>The writer for the next value: one line of NDJSON, or the next part of the JSON document.</summary>
    public Utf8JsonWriter Writer => _writer;

    /// <summary>Sets the status and content type and returns the body's writer.</summary>
    public static SyncJson Start(HttpResponse response, int statusCode, bool ndjson)
    {
        response.StatusCode = statusCode;
        response.ContentType = ndjson ? SyncRequest.NdjsonMediaType : JsonMediaType;
        return new SyncJson(response, ndjson);
    }

    /// <summary>Ends a line of NDJSON (a no-op in JSON).</summary>
    public void EndLine()
    {
        if (!Ndjson)
            return;
        _writer.Flush();
        _unflushedLines += _writer.BytesCommitted + 1;
        _body.Write("\n"u8);
        _writer.Reset();
    }

    /// <summary>True when enough is buffered that the caller should await <see cref="FlushAsync"/>.</summary>
    public bool ShouldFlush => _unflushedLines + _writer.BytesCommitted - _committedAtFlush + _writer.BytesPending >= FlushBytes;

    /// <summary>Hands what is written to the pipe and sends it.</summary>
    public async ValueTask FlushAsync()
    {
        _writer.Flush();
        _unflushedLines = 0;
        _committedAtFlush = _writer.BytesCommitted;
        await _body.FlushAsync(_cancellationToken);
    }

    public void Dispose() => _writer.Dispose();

    /// <summary>A refusal as <c>{"error": "..."}</c> (JSON whatever was asked: a client reads it from the status).</summary>
    public static async Task WriteErrorAsync(HttpResponse response, SyncError error)
    {
        using var json = Start(response, error.StatusCode, ndjson: false);
        json.Writer.WriteStartObject();
        json.Writer.WriteString("error"u8, error.Message);
        json.Writer.WriteEndObject();
        await json.FlushAsync();
    }
}
