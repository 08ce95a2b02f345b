using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Resh.Dresh;

/// <summary>
/// TLS to etcd (<c>https://</c> URLs): the server's certificate checked against <c>ordering.ca-certificate</c> (or the
/// system's roots) and its name, and this host's client certificate (<c>ordering.client-certificate</c>,
/// <c>ordering.client-key</c>) for an etcd started with <c>--client-cert-auth</c>. The platform's TLS; nothing of our own.
/// </summary>
internal static class EtcdTls
{
    /// <summary>The handler under the etcd client's gRPC channel: plain, or with the configured TLS.</summary>
    /// <exception cref="InvalidOperationException">A certificate or key cannot be read.</exception>
    public static SocketsHttpHandler Handler(EtcdOrderingOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(2),

            // HTTP/2 pings find a member that went silent (a partition, a frozen host) under a watch that has nothing to say.
            KeepAlivePingDelay = TimeSpan.FromSeconds(5),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            EnableMultipleHttp2Connections = true,
        };
        if (options.CaCertificate is null && options.ClientCertificate is null)
        {
            return handler;
        }

        var ssl = new SslClientAuthenticationOptions();
        if (options.ClientCertificate is { } certificate && options.ClientKey is { } key)
        {
            ssl.ClientCertificates = [Load("ordering.client-certificate/ordering.client-key", () => X509Certificate2.CreateFromPemFile(certificate, key))];
        }

        if (options.CaCertificate is { } caPath)
        {
            var ca = Load("ordering.ca-certificate", () => X509CertificateLoader.LoadCertificateFromFile(caPath));
            ssl.RemoteCertificateValidationCallback = (_, presented, _, errors) => presented is not null && TrustedBy(ca, presented, errors);
        }

        handler.SslOptions = ssl;
        return handler;
    }

    /// <summary>
    /// Whether a request failed in TLS rather than on the way: the handshake (an untrusted or misnamed server
    /// certificate), or, with TLS 1.3, the server's alert right after it (it refused this host's certificate, or wanted
    /// one), which .NET reports as an I/O error whose cause is the TLS library's. Such a failure does not heal by
    /// retrying, unlike an etcd that is down.
    /// </summary>
    public static bool IsTlsFailure(HttpRequestException e)
    {
        if (e.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            return true;
        }

        for (Exception? cause = e.InnerException; cause is not null; cause = cause.InnerException)
        {
            if (cause is System.Security.Authentication.AuthenticationException || cause.GetType().Name.Contains("Ssl", StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The server's certificate chains to <paramref name="ca"/> and names the host that was asked for.</summary>
    private static bool TrustedBy(X509Certificate2 ca, X509Certificate presented, SslPolicyErrors errors)
    {
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        return chain.Build(leaf);
    }

    private static X509Certificate2 Load(string setting, Func<X509Certificate2> load)
    {
        try
        {
            using var loaded = load();
            // Through PKCS#12 so a key read from PEM is usable by the TLS stack.
            return loaded.HasPrivateKey ? X509CertificateLoader.LoadPkcs12(loaded.Export(X509ContentType.Pkcs12), null) : X509CertificateLoader.LoadCertificate(loaded.RawData);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{setting}: cannot load it: {e.Message}", e);
        }
    }
}
