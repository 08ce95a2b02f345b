using System.Text;

namespace Resh.Domains;

/// <summary>A command template that cannot be expanded: unknown placeholder, unbalanced quote, trailing backslash.</summary>
public sealed class CommandTemplateException(string message, int position) : FormatException(message)
{
    /// <summary>Zero-based character offset in the template where the problem is.</summary>
    public int Position { get; } = position;
}

/// <summary>
/// Turns a configured command line such as <c>redis-server --port {port} --dir "{dir}" --save ""</c> into an
/// argument vector, without any shell.
/// </summary>
/// <remarks>
/// Words are split like a POSIX shell does: unquoted blanks separate words; <c>'...'</c> is literal;
/// <c>"..."</c> keeps blanks and honours backslash before <c>" \ $ ` {</c> and newline; outside quotes a backslash
/// makes the next character literal and backslash-newline continues the line. <c>""</c> and <c>''</c> yield an
/// empty argument. There is no other shell syntax: no variables, globbing, pipes or redirections.
/// Placeholders <c>{name}</c> (name: letters, digits, <c>_ - .</c>) are substituted inside words, in and out of
/// quotes; the value is never split, and a word made only of a placeholder whose value is empty stays as an empty
/// argument. A placeholder whose name is not in the values is an error. <c>{{</c> is a literal <c>{</c>
/// (and <c>\{</c> outside single quotes); a <c>{</c> that does not open a well-formed placeholder, and every
/// <c>}</c>, are literal.
/// </remarks>
public static class CommandTemplate
{
    public static IReadOnlyList<string> Expand(string template, IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(values);

        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        var i = 0;
        while (i < template.Length)
        {
            var c = template[i];
            switch (c)
            {
                case ' ' or '\t' or '\n' or '\r':
                    if (inWord)
                    {
                        words.Add(word.ToString());
                        word.Clear();
                        inWord = false;
                    }

                    i++;
                    break;

                case '\'':
                    {
                        var start = i;
                        inWord = true;
                        i++;
                        while (true)
                        {
                            if (i >= template.Length)
                            {
                                throw new CommandTemplateException(
                                    $"Unterminated single quote starting at position {start} in command template: {template}", start);
                            }

                            if (template[i] == '\'')
                            {
                                i++;
                                break;
                            }

                            i = AppendOrSubstitute(template, i, values, word);
                        }

                        break;
                    }

                case '"':
                    {
                        var start = i;
                        inWord = true;
                        i++;
                        while (true)
                        {
                            if (i >= template.Length)
                            {
                                throw new CommandTemplateException(
                                    $"Unterminated double quote starting at position {start} in command template: {template}", start);
                            }

                            var d = template[i];
                            if (d == '"')
                            {
                                i++;
                                break;
                            }

                            if (d == '\\' && i + 1 < template.Length && template[i + 1] is '"' or '\\' or '$' or '`' or '{' or '\n')
                            {
                                if (template[i + 1] != '\n')
                                {
                                    word.Append(template[i + 1]);
                                }

                                i += 2;
                                continue;
                            }

                            i = AppendOrSubstitute(template, i, values, word);
                        }

                        break;
                    }

                case '\\':
                    if (i + 1 >= template.Length)
                    {
                        throw new CommandTemplateException(
                            $"Trailing backslash at position {i} in command template: {template}", i);
                    }

                    if (template[i + 1] != '\n')
                    {
                        word.Append(template[i + 1]);
                        inWord = true;
                    }

                    i += 2;
                    break;

                default:
                    inWord = true;
                    i = AppendOrSubstitute(template, i, values, word);
                    break;
            }
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return words;
    }

    /// <summary>Appends the character at <paramref name="i"/>, or the placeholder starting there; returns the next index.</summary>
    private static int AppendOrSubstitute(string template, int i, IReadOnlyDictionary<string, string> values, StringBuilder word)
    {
        if (template[i] != '{')
        {
            word.Append(template[i]);
            return i + 1;
        }

        if (i + 1 < template.Length && template[i + 1] == '{')
        {
            word.Append('{');
            return i + 2;
        }

        var end = i + 1;
        while (end < template.Length && IsNameChar(template[end]))
        {
            end++;
        }

        if (end == i + 1 || end >= template.Length || template[end] != '}')
        {
            // Not a placeholder (e.g. JSON): literal brace.
            word.Append('{');
            return i + 1;
        }

        var name = template[(i + 1)..end];
        if (!values.TryGetValue(name, out var value))
        {
            var known = string.Join(", ", values.Keys.Order(StringComparer.Ordinal).Select(k => "{" + k + "}"));
            throw new CommandTemplateException(
                $"Unknown placeholder {{{name}}} at position {i} in command template: {template} (known: {(known.Length == 0 ? "none" : known)})",
                i);
        }

        word.Append(value);
        return end + 1;
    }

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.';
}
