namespace Resh.SampleKv;

/// <summary>
/// The two independently written implementations of the keyspace (N-version programming). Both give
/// byte-identical replies to the same command sequence; they differ in data structures, key
/// representation, integer parsing/formatting, glob matching and digest computation.
/// </summary>
public enum Variant
{
    /// <summary>Hash tables keyed by raw bytes (values and deadlines in separate tables), a
    /// digit-by-digit integer parser, a recursive glob matcher.</summary>
    A,

    /// <summary>Ordered trees keyed by Latin-1 strings (one cell per key), a round-trip integer
    /// parser, an iterative backtracking glob matcher.</summary>
    B,
}

/// <summary>Parsing and printing of <see cref="Variant"/> as used on the command line ("a" / "b").</summary>
public static class VariantNames
{
    /// <summary>Parses "a" or "b" (case-insensitive).</summary>
    public static bool TryParse(string? text, out Variant variant)
    {
        switch (text)
        {
            case "a" or "A":
                variant = Variant.A;
                return true;
            case "b" or "B":
                variant = Variant.B;
                return true;
            default:
                variant = default;
                return false;
        }
    }

    /// <summary>The command-line name of a variant: "a" or "b".</summary>
    public static string ToName(this Variant variant) => variant switch
    {
        Variant.A => "a",
        Variant.B => "b",
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, null),
    };
}
