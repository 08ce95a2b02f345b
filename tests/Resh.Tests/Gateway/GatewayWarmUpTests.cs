using Resh.Gateway;
using Resh.Protocols;
using Resh.Protocols.Resp;

namespace Resh.Tests.Gateway;

/// <summary>A standby's warm-up runs requests through a gateway of every protocol, answered by that gateway itself.</summary>
public sealed class GatewayWarmUpTests
{
    public static TheoryData<string> Protocols => ["resp", "line", "length-prefixed"];

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Every_warm_up_request_is_answered_without_a_service(string name)
    {
        IProtocol protocol = name switch
        {
            "resp" => new RespProtocol(),
            "line" => new LineProtocol(),
            _ => new LengthPrefixedProtocol(),
        };

        var replies = await GatewayWarmUp.RunAsync(protocol, new GatewayOptions(), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(GatewayWarmUp.Requests, replies);
    }

    [Fact]
    public async Task A_protocol_whose_gateway_keeps_expiry_warms_up_too_and_its_keeper_stops_with_it()
    {
        var protocol = new RespProtocol(new RespOptions { ExpiryRewrite = ExpiryRewrite.Owned });

        var replies = await GatewayWarmUp.RunAsync(protocol, new GatewayOptions(), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(GatewayWarmUp.Requests, replies);
    }

    [Fact]
    public async Task A_cancelled_warm_up_ends_without_an_error()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var replies = await GatewayWarmUp.RunAsync(new RespProtocol(), new GatewayOptions(), cancelled.Token).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(0, replies);
    }
}
