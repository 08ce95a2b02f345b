using System.Buffers.Binary;
using System.Numerics;

namespace Resh.Ordering;

/// <summary>
/// A fast 128-bit digest of a normalized reply, used to check replayed and late replies against the
/// decided one, and as the durable log's record checksum (so it lives here, below Voting). It guards against faults (crashes, corrupted state, wrong answers, bit flips), not against
/// a replica that crafts collisions on purpose: two independent 64-bit multiply-rotate lanes with a full
/// avalanche at the end. SHA-256 was measured first and cost more than the rest of the vote (OpenSSL's
/// per-call overhead on small replies).
/// </summary>
public static class ReplyDigest
{
    private const ulong P1 = 0x9E3779B185EBCA87UL;
    private const ulong P2 = 0xC2B2AE3D27D4EB4FUL;
    private const ulong P3 = 0x165667B19E3779F9UL;
    private const ulong P4 = 0x85EBCA77C2B2AE63UL;

    public static UInt128 Compute(ReadOnlySpan<byte> data)
    {
        var a = P1 ^ (ulong)data.Length;
        var b = P2 + (ulong)data.Length;
        var i = 0;
        for (; i + 16 <= data.Length; i += 16)
        {
            a = Round(a, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
            b = Round(b, BinaryPrimitives.ReadUInt64LittleEndian(data[(i + 8)..]));
        }

        if (i + 8 <= data.Length)
        {
            a = Round(a, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
            i += 8;
        }

        ulong tail = 0;
        for (var shift = 0; i < data.Length; i++, shift += 8)
        {
            tail |= (ulong)data[i] << shift;
        }

        b = Round(b, tail ^ P3);
        a += b;
        b += a;
        return new UInt128(Avalanche(a ^ (b >> 29)), Avalanche(b ^ P4 ^ (a << 7)));
    }

    private static ulong Round(ulong acc, ulong lane)
    {
        acc += lane * P2;
        acc = BitOperations.RotateLeft(acc, 31);
        return acc * P1;
    }

    private static ulong Avalanche(ulong h)
    {
        h ^= h >> 33;
        h *= P2;
        h ^= h >> 29;
        h *= P3;
        h ^= h >> 32;
        return h;
    }
}
