using Etcdserverpb;
using Grpc.Core;
using Grpc.Net.Client;

namespace Resh.Dresh;

/// <summary>
/// The one way Resh talks to etcd: its gRPC API (v3), through the clients dotnet-etcd generates from etcd's protos,
/// over one HTTP/2 channel per configured endpoint. It holds what every call needs: the endpoint in use (the next one
/// after a failure), TLS (<see cref="EtcdTls"/>), and with <c>ordering.user</c> the auth token in each call's metadata,
/// fetched again once when etcd says it expired. Retrying, and what a refusal means, stay with the callers.
/// </summary>
internal sealed class EtcdConnection : IDisposable
{
    /// <summary>Unary calls end by then at the latest: an etcd without quorum answers "request timed out" after about 7 s itself.</summary>
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);

    private readonly EtcdOrderingOptions _options;
    private readonly GrpcChannel?[] _channels;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private readonly string? _password;
    private int _current;
    private volatile string? _token;

    public EtcdConnection(EtcdOrderingOptions options)
    {
        _options = options;
        _channels = new GrpcChannel?[options.Endpoints.Count];
        if (options.User is not null && options.PasswordFile is { } passwordFile)
        {
            try
            {
                _password = File.ReadLines(passwordFile).FirstOrDefault()?.TrimEnd('\r') ?? "";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"ordering.password-file: cannot read {passwordFile}: {e.Message}", e);
            }
        }
    }

    /// <summary>The etcd endpoint in use.</summary>
    public Uri Endpoint => _options.Endpoints[Volatile.Read(ref _current)];

    public KV.KVClient Kv => new(Channel);

    public Lease.LeaseClient Leases => new(Channel);

    public Watch.WatchClient Watches => new(Channel);

    private GrpcChannel Channel
    {
        get
        {
            var i = Volatile.Read(ref _current);
            lock (_channels)
            {
                return _channels[i] ??= GrpcChannel.ForAddress(_options.Endpoints[i], new GrpcChannelOptions
                {
                    HttpHandler = EtcdTls.Handler(_options),
                    DisposeHttpClient = true,

                    // gRPC's connection manager fails calls at once while it backs off from a failed connect, up to 2 minutes
                    // by default: a member that is back (a healed partition) would stay unused that long. Retrying is the
                    // sequencer's, at its own pace; the channel only tries the connection again soon.
                    InitialReconnectBackoff = TimeSpan.FromMilliseconds(100),
                    MaxReconnectBackoff = TimeSpan.FromSeconds(1),

                    // A canceled call ends as an OperationCanceledException, as any other canceled operation here.
                    ThrowOperationCanceledOnCancellation = true,

                    // A watch response may carry many batches (each up to ordering.max-batch-bytes): no 4 MiB cap.
                    MaxReceiveMessageSize = null,
                    MaxSendMessageSize = null,
                });
            }
        }
    }

    /// <summary>Moves to the next configured endpoint (after a failure of the one in use).</summary>
    public void NextEndpoint(Uri failed)
    {
        var i = _options.Endpoints.ToList().IndexOf(failed);
        if (i >= 0)
        {
            Interlocked.CompareExchange(ref _current, (i + 1) % _options.Endpoints.Count, i);
        }
    }

    /// <summary>The options of a unary call: the token, and a deadline.</summary>
    public CallOptions Unary(CancellationToken ct, TimeSpan? timeout = null) => new(Headers(), DateTime.UtcNow + (timeout ?? CallTimeout), ct);

    /// <summary>
    /// The options of a stream that lasts (a watch, keepalives): the token, no deadline, and etcd's "require leader", so
    /// that a member cut off from its cluster's leader ends the stream rather than leave it silent.
    /// </summary>
    public CallOptions Stream(CancellationToken ct)
    {
        var headers = Headers() ?? [];
        headers.Add("hasleader", "true");
        return new CallOptions(headers, null, ct);
    }

    /// <summary>
    /// Runs a unary call; when etcd says the token is no longer valid (simple tokens live minutes), once more with a
    /// fresh one.
    /// </summary>
    public async Task<T> CallAsync<T>(Func<CallOptions, AsyncUnaryCall<T>> call, CancellationToken ct, TimeSpan? timeout = null)
    {
        if (_password is not null && _token is null)
        {
            await RefreshAsync(null, ct);
        }

        var token = _token;
        try
        {
            return await call(Unary(ct, timeout));
        }
        catch (RpcException e) when (_password is not null && IsExpiredToken(e))
        {
            await RefreshAsync(token, ct);
            return await call(Unary(ct, timeout));
        }
    }

    /// <summary>With ordering.user: a token now (at start: wrong credentials fail it at once); with none, nothing.</summary>
    /// <exception cref="EtcdAuthException">etcd refused the user or password.</exception>
    public async Task AuthenticateAsync(CancellationToken ct)
    {
        if (_password is not null)
        {
            await RefreshAsync(null, ct);
        }
    }

    /// <summary>Gets a fresh token before a stream is opened, when the one held may have expired.</summary>
    public async Task RefreshTokenAsync(CancellationToken ct)
    {
        if (_password is not null)
        {
            await RefreshAsync(_token, ct);
        }
    }

    /// <summary>
    /// Writes the first message of a stream. A stream whose call failed to start (its endpoint unreachable) never takes a
    /// write: the write waits until canceled, while the call's response headers carry the failure; whichever ends first
    /// decides.
    /// </summary>
    public static async Task OpenAsync<TRequest, TResponse>(AsyncDuplexStreamingCall<TRequest, TResponse> call, TRequest first, CancellationToken ct)
    {
        var write = call.RequestStream.WriteAsync(first, ct);
        var headers = call.ResponseHeadersAsync;
        if (await Task.WhenAny(write, headers) == headers && headers.IsFaulted)
        {
            await headers;
        }

        await write;
    }

    /// <summary>Whether etcd refused a call for its token (expired, or etcd restarted and forgot it).</summary>
    public static bool IsExpiredToken(RpcException e) =>
        e.StatusCode == StatusCode.Unauthenticated || e.Status.Detail.Contains("invalid auth token", StringComparison.Ordinal);

    /// <summary>The failure under a gRPC error that never reached etcd (connecting, TLS), or null.</summary>
    public static HttpRequestException? Transport(RpcException e)
    {
        for (Exception? cause = e.Status.DebugException; cause is not null; cause = cause.InnerException)
        {
            if (cause is HttpRequestException http)
            {
                return http;
            }
        }

        return null;
    }

    /// <summary>
    /// Whether a call certainly did not reach etcd (it could not connect: gRPC's connection manager reports the socket's
    /// error), so it cannot have been applied.
    /// </summary>
    public static bool NeverSent(RpcException e) =>
        e.Status.DebugException is System.Net.Sockets.SocketException || Transport(e) is { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError };

    /// <summary>
    /// Whether etcd answered, and said no: a refusal that retrying on the same terms does not change. A status the HTTP/2
    /// layer made up is no answer: an etcd member that closes the connection with ENHANCE_YOUR_CALM (too many pings on
    /// a busy machine) reaches the caller as ResourceExhausted, as etcd's own "database space exceeded" does.
    /// </summary>
    public static bool IsRefusal(RpcException e) =>
        e.StatusCode is StatusCode.InvalidArgument or StatusCode.ResourceExhausted or StatusCode.FailedPrecondition or StatusCode.PermissionDenied or StatusCode.OutOfRange
        && Transport(e) is null;

    private Metadata? Headers() => _token is { } token ? [new Metadata.Entry("token", token)] : null;

    /// <summary>A new token, unless another call got one since <paramref name="stale"/> was handed out.</summary>
    private async Task RefreshAsync(string? stale, CancellationToken ct)
    {
        await _refresh.WaitAsync(ct);
        try
        {
            if (_token is { } current && current != stale)
            {
                return;
            }

            var endpoint = Endpoint;
            AuthenticateResponse response;
            try
            {
                response = await new Auth.AuthClient(Channel).AuthenticateAsync(new AuthenticateRequest { Name = _options.User, Password = _password }, new CallOptions(null, DateTime.UtcNow + CallTimeout, ct));
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition)
            {
                throw new EtcdAuthException($"etcd at {endpoint} answered the authentication of '{_options.User}' with: {e.Status.Detail}; is authentication enabled there (etcdctl auth enable)?");
            }
            catch (RpcException e) when (IsRefusal(e))
            {
                throw new EtcdAuthException($"etcd at {endpoint} refused user '{_options.User}' (ordering.user, ordering.password-file): {e.Status.Detail}");
            }

            if (string.IsNullOrEmpty(response.Token))
            {
                throw new EtcdAuthException($"etcd at {endpoint} answered the authentication of '{_options.User}' without a token; is authentication enabled there (etcdctl auth enable)?");
            }

            _token = response.Token;
        }
        finally
        {
            _refresh.Release();
        }
    }

    public void Dispose()
    {
        lock (_channels)
        {
            foreach (var channel in _channels)
            {
                channel?.Dispose();
            }
        }

        _refresh.Dispose();
    }
}

/// <summary>etcd refused the configured user or password.</summary>
public sealed class EtcdAuthException(string message) : InvalidOperationException(message);
