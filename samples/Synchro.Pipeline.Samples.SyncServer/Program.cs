using Synchro.Pipeline;
using Synchro.Pipeline.Samples.SyncServer;

// The sync server: GET /sync/changes and GET /sync/snapshot (see samples/README.md), with the pipeline
// hosted in this process unless SyncServer:HostPipeline is false.
var builder = WebApplication.CreateBuilder(args);
var app = SyncServerApp.Build(builder);
var pipeline = app.Services.GetService<WalPipeline>();
// RunAsync disposes the application (and its services) when it stops.
await app.RunAsync();
// A fatal pipeline error stops the host, but RunAsync returns normally: say so in the exit code.
return pipeline?.GetStatus().State == WalPipelineState.Failed ? 1 : 0;
