using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Resh;

/// <summary>The bearer token check shared by the HTTP endpoints (admin, checkpoint peers).</summary>
internal static class BearerToken
{
    /// <summary>True when no token is configured, or the request carries it as "Authorization: Bearer TOKEN" (compared in constant time).</summary>
    public static bool Authorized(HttpContext http, string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return true;
        }

        var header = http.Request.Headers.Authorization.ToString();
        const string Prefix = "Bearer ";
        if (!header.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[Prefix.Length..]), Encoding.UTF8.GetBytes(token));
    }
}
