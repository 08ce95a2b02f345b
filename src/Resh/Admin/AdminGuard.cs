using System.Net;
using Microsoft.AspNetCore.Http;

namespace Resh.Admin;

/// <summary>
/// Who may use the admin endpoint besides the operator's own tools. It listens on loopback, so the danger is a web
/// page in a browser on the same machine: it can send a simple POST to 127.0.0.1 (forging a mutation), and through
/// DNS rebinding it can read replies under a name of its own. So every request must name a loopback host; a mutation
/// needs the bearer token when one is set, and otherwise the <c>X-Resh-Admin</c> header (which a page cannot add
/// without a CORS preflight this endpoint never grants) or no sign of a browser at all (no Origin, no Sec-Fetch-Site).
/// </summary>
public static class AdminGuard
{
    /// <summary>The header resh's own clients send with every admin request.</summary>
    public const string Header = "X-Resh-Admin";

    /// <summary>Why the request is refused, with its status code; null when it may go on.</summary>
    public static (int Status, string Error)? Refusal(HttpRequest request, string? token)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!IsLoopbackHost(request.Host.Host))
        {
            return (StatusCodes.Status403Forbidden, $"admin: the Host '{request.Host}' is not a loopback address or localhost (a page in a browser reaching this endpoint under another name?)");
        }

        if (!HttpMethods.IsPost(request.Method))
        {
            return null;
        }

        if (!string.IsNullOrEmpty(token))
        {
            return BearerToken.Authorized(request.HttpContext, token) ? null : (StatusCodes.Status401Unauthorized, "missing or wrong bearer token (admin-token)");
        }

        if (request.Headers.ContainsKey(Header))
        {
            return null;
        }

        var origin = request.Headers.Origin.ToString();
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (origin.Length > 0 || (site.Length > 0 && site != "none"))
        {
            return (StatusCodes.Status403Forbidden, $"admin: a request from a browser (Origin '{origin}', Sec-Fetch-Site '{site}') may not change resh; tools send the {Header} header, or set admin-token");
        }

        return null;
    }

    private static bool IsLoopbackHost(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
    }
}
