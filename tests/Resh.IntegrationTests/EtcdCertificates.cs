using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Resh.IntegrationTests;

/// <summary>A certificate authority, a server certificate for 127.0.0.1 and a client certificate, as PEM files in a directory.</summary>
internal sealed class EtcdCertificates
{
    private EtcdCertificates(string directory) => Directory = directory;

    public string Directory { get; }

    public string Authority => Path.Combine(Directory, "ca.pem");

    public string ServerCertificate => Path.Combine(Directory, "server.pem");

    public string ServerKey => Path.Combine(Directory, "server.key");

    public string ClientCertificate => Path.Combine(Directory, "client.pem");

    public string ClientKey => Path.Combine(Directory, "client.key");

    /// <summary>Makes a fresh authority and the two certificates it signs, valid for a day.</summary>
    public static EtcdCertificates Create(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        var files = new EtcdCertificates(directory);
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=resh test etcd authority", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        File.WriteAllText(files.Authority, ca.ExportCertificatePem());
        // etcd's own HTTP gateway dials its gRPC port with the server certificate: it must be good for clients too.
        Issue(ca, "CN=127.0.0.1", ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], files.ServerCertificate, files.ServerKey, now);
        Issue(ca, "CN=resh", ["1.3.6.1.5.5.7.3.2"], files.ClientCertificate, files.ClientKey, now);
        return files;
    }

    private static void Issue(X509Certificate2 ca, string subject, string[] usages, string certificatePath, string keyPath, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        var oids = new OidCollection();
        foreach (var usage in usages)
        {
            oids.Add(new Oid(usage));
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        using var certificate = request.Create(ca, now.AddMinutes(-5), now.AddHours(23), RandomNumberGenerator.GetBytes(8));
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
    }
}
