using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Resh.Remus;

/// <summary>
/// Mutual TLS for the Remus link with one certificate the pair shares (<c>remus.tls-certificate</c> and
/// <c>remus.tls-key</c>, in the configuration both hosts run from): each side presents it and accepts only a peer that
/// presents the same one, compared by its SHA-256. Whoever lacks the key cannot complete the handshake, so a stranger
/// on the link's port can neither act as the primary nor as the backup, and what crosses the network is encrypted.
/// Plain TLS 1.2/1.3 from the platform; no cryptography of our own.
/// </summary>
public sealed class LinkTls : IDisposable
{
    private readonly X509Certificate2 _certificate;
    private readonly byte[] _pin;

    private LinkTls(X509Certificate2 certificate)
    {
        _certificate = certificate;
        _pin = SHA256.HashData(certificate.RawData);
    }

    /// <summary>The link's TLS when the options name a certificate; null for a plain (loopback-only) link.</summary>
    /// <exception cref="InvalidOperationException">The certificate or key cannot be read, or they do not belong together.</exception>
    public static LinkTls? From(RemusOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.TlsCertificate is null || options.TlsKey is null)
        {
            return null;
        }

        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(options.TlsCertificate, options.TlsKey);
            if (!pem.HasPrivateKey)
            {
                throw new CryptographicException("the key does not belong to the certificate");
            }

            // Through PKCS#12 so the key is usable by the TLS stack on every platform.
            return new LinkTls(X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null));
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"remus.tls-certificate/remus.tls-key: cannot load {options.TlsCertificate} with {options.TlsKey}: {e.Message}", e);
        }
    }

    /// <summary>The primary's side: authenticates the backup, and itself to it.</summary>
    public Task<Stream> ConnectAsync(Socket socket, CancellationToken ct) =>
        AuthenticateAsync(socket, tls => tls.AuthenticateAsClientAsync(
            new SslClientAuthenticationOptions
            {
                TargetHost = "resh-remus-link",
                ClientCertificates = [_certificate],
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            },
            ct));

    /// <summary>The backup's side: requires the primary's certificate.</summary>
    public Task<Stream> AcceptAsync(Socket socket, CancellationToken ct) =>
        AuthenticateAsync(socket, tls => tls.AuthenticateAsServerAsync(
            new SslServerAuthenticationOptions
            {
                ServerCertificate = _certificate,
                ClientCertificateRequired = true,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            },
            ct));

    private async Task<Stream> AuthenticateAsync(Socket socket, Func<SslStream, Task> handshake)
    {
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false, Validate);
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
        var request = new CertificateRequest("CN=resh-remus-link", key, HashAlgorithmName.SHA256);
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
