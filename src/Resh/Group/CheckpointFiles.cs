using System.Security.Cryptography;
using System.Text;
using Resh.Checkpoints;
using Resh.Native;
using Resh.Protocols.Resp;

namespace Resh.Group;

/// <summary>A replica's checkpoint files: captured by hard link at the checkpoint's position, or hashed for the vote.</summary>
internal static class CheckpointFiles
{
    public static void Capture(string dataDirectory, IReadOnlyList<string> files, string target)
    {
        foreach (var file in files)
        {
            var source = Path.Combine(dataDirectory, file);
            var destination = Path.Combine(target, file);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);

            // A hard link costs microseconds and stays the state of this position as long as the service
            // replaces the file by rename (Redis writes a temporary file and renames it), never in place.
            if (Libc.Link(source, destination) != 0)
            {
                File.Copy(source, destination, overwrite: true);
            }
        }
    }

    /// <summary>
    /// What the vote on files compares: with <see cref="CheckpointOptions.RdbDigest"/> the data in each file read as RDB
    /// (equal data, whatever its encoding, digests alike), otherwise the files' SHA-256.
    /// </summary>
    public static string Digest(string? format, string directory, IReadOnlyList<string> files) =>
        format == CheckpointOptions.RdbDigest
            ? string.Join(" ", files.Select(f => RdbDigest.Compute(Path.Combine(directory, f))))
            : "sha256:" + Hash(directory, files);

    public static string Hash(string dataDirectory, IReadOnlyList<string> files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var file in files)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(file + "\0"));
            using var stream = new FileStream(Path.Combine(dataDirectory, file), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
            int n;
            while ((n = stream.Read(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, n);
            }
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
