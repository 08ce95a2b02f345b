namespace Resh;

/// <summary>How an options object's own <c>Validate()</c> result becomes an exception.</summary>
public static class OptionsValidation
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming every problem, one per line, when there are any.</summary>
    public static void ThrowIfInvalid(IReadOnlyList<string> errors, string paramName)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (errors.Count > 0)
        {
            throw new ArgumentException("invalid options:" + Environment.NewLine + string.Join(Environment.NewLine, errors), paramName);
        }
    }
}
