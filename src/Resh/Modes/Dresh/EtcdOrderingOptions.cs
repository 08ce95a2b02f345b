using Resh.Options;


namespace Resh.Dresh;

/// <summary>Ordering through etcd (D-RESH): where the cluster is, and who this gateway is in it.</summary>
public sealed class EtcdOrderingOptions
{
    /// <summary>etcd client URLs (its gRPC API; https:// for TLS), e.g. http://127.0.0.1:2379; the first that answers is used, the next when it fails.</summary>
    public IReadOnlyList<Uri> Endpoints { get; set; } = [];

    /// <summary>The replicated service's name: the log lives under /resh/NAME/log/.</summary>
    public string Cluster { get; set; } = "";

    /// <summary>This gateway's number in the cluster (1..1023): its batch keys and session ids are its own.</summary>
    public int Member { get; set; } = 1;

    /// <summary>
    /// The member this host takes the place of once it serves (`resh run --replaces MEMBER`; not a configuration key: it
    /// is one move, not a setting): that member drains its clients and leaves its part to this host.
    /// </summary>
    public int? Replaces { get; set; }

    /// <summary>At most this many entries go into one batch (one etcd key).</summary>
    public int MaxBatch { get; set; } = 1024;

    /// <summary>Batches of this gateway being written to etcd at once (each waits for etcd's commit).</summary>
    public int MaxInFlight { get; set; } = 8;

    /// <summary>
    /// Bytes of one batch at most, as encoded (etcd's own limit, --max-request-bytes, is 1.5 MiB by default, for the
    /// whole txn). A request larger than this alone gets an error reply and is not applied; raise both together for
    /// larger requests.
    /// </summary>
    public int MaxBatchBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// TTL of this gateway's etcd lease. A gateway whose lease expires (it crashed, or was cut off that long) is
    /// taken out of the cluster: every gateway closes its sessions at the same log position, and its later batches are refused.
    /// </summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Where this host serves its newest checkpoint to peers (GET /checkpoint/newest), for a host whose etcd
    /// history was compacted past its own checkpoint; advertised in its member key. Null: not served.
    /// </summary>
    public System.Net.IPEndPoint? PeerListen { get; set; }

    /// <summary>
    /// After a checkpoint, the member that schedules checkpoints deletes the batches every live member's newest
    /// checkpoint covers and compacts etcd's history up to there, so that etcd does not grow until its quota
    /// stops the cluster. False: Resh deletes nothing and compacts nothing (the etcd cluster is shared with
    /// others, or its operator compacts it).
    /// </summary>
    public bool Trim { get; set; } = true;

    /// <summary>etcd user for authentication (with <see cref="PasswordFile"/>); null: etcd without authentication.</summary>
    public string? User { get; set; }

    /// <summary>A file holding the etcd user's password (its first line), kept out of the configuration.</summary>
    public string? PasswordFile { get; set; }

    /// <summary>PEM certificate of the authority that signed etcd's server certificates (https:// URLs); null: the system's roots.</summary>
    public string? CaCertificate { get; set; }

    /// <summary>PEM client certificate for an etcd that requires one (--client-cert-auth), with <see cref="ClientKey"/>.</summary>
    public string? ClientCertificate { get; set; }

    /// <summary>PEM private key of <see cref="ClientCertificate"/>.</summary>
    public string? ClientKey { get; set; }

    /// <summary>
    /// PEM certificate every host shares for mutual TLS between checkpoint peers (with <see cref="PeerTlsKey"/>): the peer
    /// server and the fetching host accept only each other's copy of it (<c>resh link-certificate</c> makes one).
    /// </summary>
    public string? PeerTlsCertificate { get; set; }

    /// <summary>PEM private key of <see cref="PeerTlsCertificate"/>.</summary>
    public string? PeerTlsKey { get; set; }

    private static OptionParser<Uri> EtcdUrl { get; } = (string text, OptionContext _, out Uri value, out string problem) =>
    {
        problem = $"'{text}' is not an etcd client URL; write e.g. http://10.0.0.1:2379";
        return Uri.TryCreate(text, UriKind.Absolute, out value!) && value.Scheme is "http" or "https";
    };

    /// <summary>The keys of the ordering: section.</summary>
    public static OptionSchema<EtcdOrderingOptions> Keys { get; } = new OptionSchema<EtcdOrderingOptions>()
        .List("etcd", "etcd client URLs", EtcdUrl, (o, v) => o.Endpoints = v, "[http://127.0.0.1:2379]", oneToo: true, required: "etcd: [http://127.0.0.1:2379]")
        .Value("cluster", "name of the replicated service in etcd, the same on every host", OptionValues.Text, (o, v) => o.Cluster = v, required: "cluster: redis")
        .Value("member", "this host's number, unique in the cluster", OptionValues.Integer(1, 1023), (o, v) => o.Member = (int)v)
        .Value("max-batch", "most requests in one etcd transaction", OptionValues.Integer(1, 1_000_000), (o, v) => o.MaxBatch = (int)v)
        .Value("max-in-flight", "etcd transactions in flight at once", OptionValues.Integer(1, 1024), (o, v) => o.MaxInFlight = (int)v)
        .Value("max-batch-bytes", "largest etcd transaction", OptionValues.Size, (o, v) => o.MaxBatchBytes = (int)Math.Min(int.MaxValue, v))
        .Value("lease", "lease of this host's membership", OptionValues.Duration(), (o, v) => o.Lease = v)
        .Value("peer-listen", "address serving this host's checkpoints to its peers", OptionValues.Endpoint, (o, v) => o.PeerListen = v)
        .Value("trim", "delete batches every live host's checkpoint covers", OptionValues.Flag, (o, v) => o.Trim = v)
        .Value("user", "etcd user to authenticate as (etcd auth enabled)", OptionValues.Text, (o, v) => o.User = v)
        .Value("password-file", "file holding the etcd user's password", OptionValues.Path, (o, v) => o.PasswordFile = v)
        .Value("ca-certificate", "PEM certificate of the authority of etcd's server certificates (https)", OptionValues.Path, (o, v) => o.CaCertificate = v)
        .Value("client-certificate", "PEM client certificate for etcd (https, --client-cert-auth)", OptionValues.Path, (o, v) => o.ClientCertificate = v)
        .Value("client-key", "PEM private key of client-certificate", OptionValues.Path, (o, v) => o.ClientKey = v)
        .Value("peer-tls-certificate", "PEM certificate every host shares for mutual TLS between checkpoint peers", OptionValues.Path, (o, v) => o.PeerTlsCertificate = v)
        .Value("peer-tls-key", "PEM private key of peer-tls-certificate", OptionValues.Path, (o, v) => o.PeerTlsKey = v);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Endpoints.Count == 0)
        {
            errors.Add("ordering.etcd: needs at least one etcd client URL, e.g. [http://127.0.0.1:2379]");
        }

        if ((ClientCertificate is null) != (ClientKey is null))
        {
            errors.Add("ordering.client-certificate and ordering.client-key: give both or neither");
        }

        if ((PeerTlsCertificate is null) != (PeerTlsKey is null))
        {
            errors.Add("ordering.peer-tls-certificate and ordering.peer-tls-key: give both (the certificate every host shares and its key), or neither");
        }

        var https = Endpoints.Count(e => e.Scheme == Uri.UriSchemeHttps);
        if (https > 0 && https < Endpoints.Count)
        {
            errors.Add("ordering.etcd: all http:// or all https://, not both");
        }

        if (https == 0 && (CaCertificate ?? ClientCertificate) is not null)
        {
            errors.Add("ordering.ca-certificate and ordering.client-certificate need https:// etcd URLs");
        }

        if ((User is null) != (PasswordFile is null))
        {
            errors.Add("ordering.user and ordering.password-file: give both (etcd with authentication) or neither");
        }

        foreach (var endpoint in Endpoints)
        {
            if (endpoint.Scheme is not ("http" or "https"))
            {
                errors.Add($"ordering.etcd: '{endpoint}' is not an http(s) URL");
            }
        }

        if (string.IsNullOrWhiteSpace(Cluster) || Cluster.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
        {
            errors.Add($"ordering.cluster: '{Cluster}' must be a name of letters, digits, '-' and '_'");
        }

        if (Member is < 1 or > 1023)
        {
            errors.Add($"ordering.member: must be 1 to 1023 (got {Member}); every gateway of the cluster needs its own");
        }

        if (Replaces is { } replaced && (replaced is < 1 or > 1023 || replaced == Member))
        {
            errors.Add($"--replaces: must name another member of the cluster, 1 to 1023 (got {replaced}; this host is member {Member})");
        }

        if (MaxBatch < 1)
        {
            errors.Add("ordering.max-batch: must be at least 1");
        }

        if (MaxInFlight is < 1 or > 1024)
        {
            errors.Add("ordering.max-in-flight: must be 1 to 1024");
        }

        if (MaxBatchBytes is < 1024 or > 512 * 1024 * 1024)
        {
            errors.Add($"ordering.max-batch-bytes: must be 1KiB to 512MiB (got {MaxBatchBytes}); keep it about two thirds of etcd's --max-request-bytes");
        }

        if (Lease < TimeSpan.FromSeconds(2) || Lease > TimeSpan.FromHours(1))
        {
            errors.Add($"ordering.lease: must be 2s to 1h (got {Lease.TotalSeconds:0.###}s)");
        }

        return errors;
    }

    /// <summary>Session ids of this member start here, so that they never collide with another member's.</summary>
    public long FirstSessionId => (long)Member << 40;
}
