using System.Globalization;
using System.Net;

namespace Resh.SampleKv;

/// <summary>The command line of resh-samplekv.</summary>
internal sealed record CliOptions(int Port, IPAddress Bind, string? Directory, Variant Variant, bool ShowHelp)
{
    public const string Usage =
        "usage: resh-samplekv --port N [--bind 127.0.0.1] [--dir D] [--variant a|b]\n" +
        "  --port N        TCP port to listen on (0 picks a free one)\n" +
        "  --bind ADDR     IP address to listen on (default 127.0.0.1)\n" +
        "  --dir D         working directory of this replica; created if missing (data stays in memory)\n" +
        "  --variant a|b   which of the two independent implementations to run (default a)";

    /// <summary>Parses the arguments; "--name value" and "--name=value" are both accepted, the last one wins.</summary>
    public static bool TryParse(IReadOnlyList<string> args, out CliOptions options, out string error)
    {
        options = new CliOptions(-1, IPAddress.Loopback, null, Variant.A, ShowHelp: false);
        error = "";
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg is "-h" or "--help")
            {
                options = options with { ShowHelp = true };
                continue;
            }

            string name = arg;
            string? value = null;
            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 0)
            {
                name = arg[..equals];
                value = arg[(equals + 1)..];
            }

            if (name is not ("--port" or "--bind" or "--dir" or "--variant"))
            {
                error = $"unknown argument '{arg}'";
                return false;
            }

            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    error = $"{name} needs a value";
                    return false;
                }

                value = args[++i];
            }

            switch (name)
            {
                case "--port":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > IPEndPoint.MaxPort)
                    {
                        error = $"--port must be a number from 0 to {IPEndPoint.MaxPort}, not '{value}'";
                        return false;
                    }

                    options = options with { Port = port };
                    break;
                case "--bind":
                    IPAddress? address = value == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(value, out IPAddress? parsed) ? parsed : null;
                    if (address is null)
                    {
                        error = $"--bind must be an IP address, not '{value}'";
                        return false;
                    }

                    options = options with { Bind = address };
                    break;
                case "--dir":
                    if (value.Length == 0)
                    {
                        error = "--dir must not be empty";
                        return false;
                    }

                    options = options with { Directory = value };
                    break;
                default:
                    if (!VariantNames.TryParse(value, out Variant variant))
                    {
                        error = $"--variant must be 'a' or 'b', not '{value}'";
                        return false;
                    }

                    options = options with { Variant = variant };
                    break;
            }
        }

        if (options.Port < 0 && !options.ShowHelp)
        {
            error = "--port is required";
            return false;
        }

        return true;
    }
}
