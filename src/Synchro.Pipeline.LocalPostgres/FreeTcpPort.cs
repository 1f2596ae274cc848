using System.Net;
using System.Net.Sockets;

namespace Synchro.Pipeline.LocalPostgres;

internal static class FreeTcpPort
{
    /// <summary>
    /// Returns a loopback port that was free a moment ago. The port is released before returning,
    /// so another process may still take it; callers retry on "address already in use".
    /// </summary>
    public static int Next()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }
}
