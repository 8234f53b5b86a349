using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace StableAlignment.Core.Serialization;

/// <summary>
/// Escapes only what JSON requires (the quotation mark, the backslash and control characters) and writes every other
/// character as UTF-8, characters beyond the Basic Multilingual Plane included. The framework's relaxed encoder still
/// writes an emoji as <c>\uD83D\uDE22</c>; the files this library writes are read by people and by Python tools
/// alike, and the docs promise that text is written as is.
/// </summary>
internal sealed class PlainTextJsonEncoder : JavaScriptEncoder
{
    public static PlainTextJsonEncoder Instance { get; } = new();

    /// <summary>Writer options with this encoder, for every JSON file the library writes.</summary>
    public static JsonWriterOptions WriterOptions { get; } = new() { Encoder = Instance };

    /// <summary>Serializer options with this encoder.</summary>
    public static JsonSerializerOptions SerializerOptions { get; } = new() { Encoder = Instance };

    // \uXXXX is the longest escape.
    public override int MaxOutputCharactersPerInputCharacter => 6;

    public override bool WillEncode(int unicodeScalar) => unicodeScalar is < 0x20 or '"' or '\\';

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        for (int i = 0; i < textLength; i++)
        {
            if (WillEncode(text[i])) return i;
        }
        return -1;
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        string escaped = unicodeScalar switch
        {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\b' => "\\b",
            '\f' => "\\f",
            < 0x20 => "\\u" + unicodeScalar.ToString("X4", CultureInfo.InvariantCulture),
            _ => char.ConvertFromUtf32(unicodeScalar),
        };
        if (escaped.Length > bufferLength)
        {
            numberOfCharactersWritten = 0;
            return false;
        }
        for (int i = 0; i < escaped.Length; i++) buffer[i] = escaped[i];
        numberOfCharactersWritten = escaped.Length;
        return true;
    }
}
