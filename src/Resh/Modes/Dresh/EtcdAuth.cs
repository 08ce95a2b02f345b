using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Serialization;

namespace Resh.Dresh;

/// <summary>
/// etcd authentication for every request of the etcd client: a token from <c>/v3/auth/authenticate</c> (user and the
/// password read from <c>ordering.password-file</c>) in the <c>Authorization</c> header; a request refused because the
/// token expired is sent once more with a fresh one. Wrong credentials are an <see cref="EtcdAuthException"/>, which the
/// start turns into one line naming the setting.
/// </summary>
internal sealed class EtcdAuthHandler : DelegatingHandler
{
    private readonly string _user;
    private readonly string _password;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile string? _token;

    public EtcdAuthHandler(string user, string passwordFile, HttpMessageHandler inner)
        : base(inner)
    {
        _user = user;
        try
        {
            _password = File.ReadLines(passwordFile).FirstOrDefault()?.TrimEnd('\r') ?? "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"ordering.password-file: cannot read {passwordFile}: {e.Message}", e);
        }
    }

    /// <summary>Gets a token from <paramref name="endpoint"/> now (at start: wrong credentials fail it at once).</summary>
    public Task AuthenticateAsync(Uri endpoint, CancellationToken ct) => RefreshAsync(endpoint, null, ct);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var endpoint = new Uri(request.RequestUri!.GetLeftPart(UriPartial.Authority));
        var token = _token ?? await RefreshAsync(endpoint, null, cancellationToken);
        request.Headers.Remove("Authorization");
        request.Headers.TryAddWithoutValidation("Authorization", token);
        var response = await base.SendAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }

        // The token expired (etcd's simple tokens live minutes): once more with a fresh one.
        response.Dispose();
        token = await RefreshAsync(endpoint, token, cancellationToken);
        request.Headers.Remove("Authorization");
        request.Headers.TryAddWithoutValidation("Authorization", token);
        return await base.SendAsync(request, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _refresh.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>A new token, unless another request got one since <paramref name="stale"/> was handed out.</summary>
    private async Task<string> RefreshAsync(Uri endpoint, string? stale, CancellationToken ct)
    {
        await _refresh.WaitAsync(ct);
        try
        {
            if (_token is { } current && current != stale)
            {
                return current;
            }

            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(endpoint, "/v3/auth/authenticate"))
            {
                Content = JsonContent.Create(new AuthenticateRequest(_user, _password), EtcdAuthJson.Default.AuthenticateRequest),
            };
            using var response = await base.SendAsync(request, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode && body.Contains("CommonName of client", StringComparison.Ordinal))
            {
                // etcd's HTTP gateway, which resh speaks, takes no password from a client that presents a certificate.
                throw new EtcdAuthException($"etcd at {endpoint} does not take a password from a client with a certificate on its HTTP gateway ({body.Trim()}); use ordering.user and ordering.password-file without ordering.client-certificate (https with ordering.ca-certificate still encrypts and checks the server), or the certificate alone without etcd authentication");
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new EtcdAuthException($"etcd at {endpoint} refused user '{_user}' (ordering.user, ordering.password-file): {(int)response.StatusCode} {body.Trim()}");
            }

            var token = System.Text.Json.JsonSerializer.Deserialize(body, EtcdAuthJson.Default.AuthenticateResponse)?.Token;
            if (string.IsNullOrEmpty(token))
            {
                throw new EtcdAuthException($"etcd at {endpoint} answered the authentication of '{_user}' without a token; is authentication enabled there (etcdctl auth enable)?");
            }

            _token = token;
            return token;
        }
        finally
        {
            _refresh.Release();
        }
    }

    internal sealed record AuthenticateRequest([property: JsonPropertyName("name")] string Name, [property: JsonPropertyName("password")] string Password);

    internal sealed record AuthenticateResponse([property: JsonPropertyName("token")] string? Token);
}

/// <summary>etcd refused the configured user or password.</summary>
public sealed class EtcdAuthException(string message) : HttpRequestException(message);

[JsonSerializable(typeof(EtcdAuthHandler.AuthenticateRequest))]
[JsonSerializable(typeof(EtcdAuthHandler.AuthenticateResponse))]
internal sealed partial class EtcdAuthJson : JsonSerializerContext;
