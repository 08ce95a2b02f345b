using System.Net.Http;
using Grpc.Core;
using Resh.Dresh;

namespace Resh.Tests.Modes;

/// <summary>What counts as etcd refusing a call (not to be retried) and what as the connection failing (another endpoint may answer).</summary>
public sealed class EtcdRefusalTests
{
    [Fact]
    public void Etcds_own_resource_exhausted_is_a_refusal()
    {
        var quota = new RpcException(new Status(StatusCode.ResourceExhausted, "etcdserver: mvcc: database space exceeded"));

        Assert.True(EtcdConnection.IsRefusal(quota));
    }

    [Fact]
    public void A_connection_closed_with_enhance_your_calm_is_no_refusal()
    {
        var goAway = new HttpRequestException("The HTTP/2 server closed the connection. HTTP/2 error code 'ENHANCE_YOUR_CALM' (0xb).", new HttpProtocolException(0xb, "ENHANCE_YOUR_CALM", null));
        var calm = new RpcException(new Status(StatusCode.ResourceExhausted, "Error starting gRPC call.", goAway));

        Assert.False(EtcdConnection.IsRefusal(calm));
    }
}
