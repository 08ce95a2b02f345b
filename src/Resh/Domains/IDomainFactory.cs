namespace Resh.Domains;

/// <summary>Creates domains of one run; disposing it kills every domain it created and removes their cgroups.</summary>
public interface IDomainFactory : IAsyncDisposable
{
    /// <summary>"cgroup-v1", "cgroup-v2" or "signals", as detected once for this factory.</summary>
    string Isolation { get; }

    /// <summary>A new domain in state <see cref="DomainState.Created"/>; call <see cref="IDomain.Start"/> to run it.</summary>
    IDomain Create(DomainSpec spec);
}
