using System.Text;

namespace StableAlignment.Core.Tests.Models;

/// <summary>
/// A GGUF v3 reader written from ggml's <c>docs/gguf.md</c> for the tests (it shares no code with the library's writer):
/// metadata values by key and tensor infos (name, dimensions in file order, type, offset).
/// </summary>
internal sealed class GgufTestReader
{
    public Dictionary<string, object> Metadata { get; } = new(StringComparer.Ordinal);

    public List<(string Name, ulong[] Dims, uint Type, ulong Offset)> Tensors { get; } = [];

    public uint Version { get; }

    public long DataStart { get; }

    public GgufTestReader(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        if (r.ReadUInt32() != 0x46554747) throw new InvalidDataException("Not GGUF.");
        Version = r.ReadUInt32();
        ulong tensors = r.ReadUInt64(), kvs = r.ReadUInt64();
        for (ulong i = 0; i < kvs; i++)
        {
            var key = Str(r);
            Metadata[key] = Value(r, r.ReadUInt32());
        }
        for (ulong i = 0; i < tensors; i++)
        {
            var name = Str(r);
            var dims = new ulong[r.ReadUInt32()];
            for (int d = 0; d < dims.Length; d++) dims[d] = r.ReadUInt64();
            Tensors.Add((name, dims, r.ReadUInt32(), r.ReadUInt64()));
        }
        long alignment = Metadata.TryGetValue("general.alignment", out var a) ? Convert.ToInt64(a, System.Globalization.CultureInfo.InvariantCulture) : 32;
        DataStart = (r.BaseStream.Position + alignment - 1) / alignment * alignment;
    }

    private static string Str(BinaryReader r) => Encoding.UTF8.GetString(r.ReadBytes((int)r.ReadUInt64()));

    private static object Value(BinaryReader r, uint type) => type switch
    {
        0 => r.ReadByte(),
        1 => r.ReadSByte(),
        2 => r.ReadUInt16(),
        3 => r.ReadInt16(),
        4 => r.ReadUInt32(),
        5 => r.ReadInt32(),
        6 => r.ReadSingle(),
        7 => r.ReadByte() != 0,
        8 => Str(r),
        9 => Array(r),
        10 => r.ReadUInt64(),
        11 => r.ReadInt64(),
        12 => r.ReadDouble(),
        _ => throw new InvalidDataException($"Unknown GGUF value type {type}."),
    };

    private static object[] Array(BinaryReader r)
    {
        uint type = r.ReadUInt32();
        var items = new object[r.ReadUInt64()];
        for (int i = 0; i < items.Length; i++) items[i] = Value(r, type);
        return items;
    }
}
