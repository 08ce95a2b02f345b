using System.Net;
using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

internal static class SampleKvTestServer
{
    /// <summary>An in-process server on a free loopback port.</summary>
    public static Task<KvServer> StartAsync(Variant variant) =>
        KvServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), variant);

    /// <summary>Sends each request and returns the replies, one request at a time.</summary>
    public static async Task<List<string>> RunAsync(RespTestClient client, IEnumerable<string[]> requests)
    {
        var replies = new List<string>();
        foreach (string[] request in requests)
        {
            replies.Add(await client.CommandAsync(request));
        }

        return replies;
    }
}
