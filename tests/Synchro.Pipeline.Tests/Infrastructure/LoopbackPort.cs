using System.Net;
using System.Net.Sockets;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>Free TCP ports on the loopback interface, for a listener a test or a process it starts opens.</summary>
internal static class LoopbackPort
{
    /// <summary>A port nothing listened on a moment ago (the system's choice for port 0).</summary>
    public static int Free()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
