using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Resh;

/// <summary>
/// Mutual TLS for a link between hosts with one certificate the hosts share (the Remus link: <c>remus.tls-certificate</c>
/// and <c>remus.tls-key</c>; D-RESH checkpoint peers: <c>ordering.peer-tls-certificate</c> and
/// <c>ordering.peer-tls-key</c>): each side presents it and accepts only a peer that presents the same one, compared by
/// its SHA-256. Whoever lacks the key cannot complete the handshake, so a stranger on the link's port can neither act as
/// a peer nor read what crosses the network. Plain TLS 1.2/1.3 from the platform; no cryptography of our own.
/// </summary>
public sealed class PinnedTls : IDisposable
{
    private readonly X509Certificate2 _certificate;
    private readonly byte[] _pin;

    private PinnedTls(X509Certificate2 certificate)
    {
        _certificate = certificate;
        _pin = SHA256.HashData(certificate.RawData);
    }

    /// <summary>The link's TLS when a certificate and key are named; null for a plain (loopback-only) link.</summary>
    /// <param name="settings">The settings that name them, for the error message (e.g. "remus.tls-certificate/remus.tls-key").</param>
    /// <exception cref="InvalidOperationException">The certificate or key cannot be read, or they do not belong together.</exception>
    public static PinnedTls? Load(string? certificate, string? key, string settings)
    {
        if (certificate is null || key is null)
        {
            return null;
        }

        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(certificate, key);
            if (!pem.HasPrivateKey)
            {
                throw new CryptographicException("the key does not belong to the certificate");
            }

            // Through PKCS#12 so the key is usable by the TLS stack on every platform.
            return new PinnedTls(X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null));
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{settings}: cannot load {certificate} with {key}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The connecting side's TLS settings: it presents the shared certificate and accepts only a peer presenting it too
    /// (for a TLS stack configured elsewhere, e.g. an HTTP client, the peer check is part of them).
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions() => new()
    {
        TargetHost = "resh-link",
        ClientCertificates = [_certificate],
        RemoteCertificateValidationCallback = Validate,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };

    /// <summary>The connecting side (the Remus primary): authenticates the accepting side, and itself to it.</summary>
    public Task<Stream> ConnectAsync(Socket socket, CancellationToken ct) =>
        AuthenticateAsync(socket, tls => tls.AuthenticateAsClientAsync(ClientOptions(), ct));

    /// <summary>The accepting side's TLS settings: it presents the shared certificate and requires it of the connecting side.</summary>
    public SslServerAuthenticationOptions ServerOptions() => new()
    {
        ServerCertificate = _certificate,
        ClientCertificateRequired = true,
        RemoteCertificateValidationCallback = Validate,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };

    /// <summary>The accepting side (the Remus backup): requires the connecting side's certificate.</summary>
    public Task<Stream> AcceptAsync(Socket socket, CancellationToken ct) =>
        AuthenticateAsync(socket, tls => tls.AuthenticateAsServerAsync(ServerOptions(), ct));

    private async Task<Stream> AuthenticateAsync(Socket socket, Func<SslStream, Task> handshake)
    {
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            await handshake(tls);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Writes a new self-signed certificate and its key (ECDSA P-256, PEM) for a pair to share; the key file is readable
    /// by its owner only. Equivalent to <c>openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes</c>.
    /// </summary>
    public static void WriteNewPair(string certificatePath, string keyPath, TimeSpan validity)
    {
        ArgumentException.ThrowIfNullOrEmpty(certificatePath);
        ArgumentException.ThrowIfNullOrEmpty(keyPath);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=resh-link", key, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.Add(validity));
        using (var keyFile = new FileStream(keyPath, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(keyFile.SafeFileHandle, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            keyFile.Write(System.Text.Encoding.ASCII.GetBytes(key.ExportPkcs8PrivateKeyPem()));
        }

        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
    }

    public void Dispose() => _certificate.Dispose();

    /// <summary>The peer must present the pair's certificate; chains and names do not matter, the pin does.</summary>
    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        certificate is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(certificate.GetRawCertData()), _pin);
}
