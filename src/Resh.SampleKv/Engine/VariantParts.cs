using Resh.SampleKv.VariantA;
using Resh.SampleKv.VariantB;

namespace Resh.SampleKv.Engine;

/// <summary>The variant-specific pieces the shared protocol and command layers run on.</summary>
internal sealed record VariantParts(IKeyspace Keyspace, IIntegerCodec Integers, IGlobMatcher Glob)
{
    /// <summary>Builds a fresh, empty set of parts for a variant.</summary>
    public static VariantParts Create(Variant variant, int databases) => variant switch
    {
        Variant.A => new VariantParts(new HashKeyspace(databases), new DigitIntegerCodec(), new RecursiveGlob()),
        Variant.B => new VariantParts(new OrderedKeyspace(databases), new RoundTripIntegerCodec(), new BacktrackingGlob()),
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, null),
    };
}
