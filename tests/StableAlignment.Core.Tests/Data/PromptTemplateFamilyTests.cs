using System.Text;
using System.Text.Json.Nodes;
using LLama;
using StableAlignment.Core.Data;
using StableAlignment.Core.Models;
using StableAlignment.Core.Tests.Models;

namespace StableAlignment.Core.Tests.Data;

public class PromptTemplateFamilyTests
{
    public static TheoryData<string, string> Presets => new()
    {
        { nameof(PromptTemplate.ChatMl), "chatml" },
        { nameof(PromptTemplate.Llama3), "llama3" },
        { nameof(PromptTemplate.Llama2), "llama2-sys-strip" },
        { nameof(PromptTemplate.Mistral), "mistral-v3" },
    };

    private static PromptTemplate Preset(string name) => name switch
    {
        nameof(PromptTemplate.ChatMl) => PromptTemplate.ChatMl,
        nameof(PromptTemplate.Llama3) => PromptTemplate.Llama3,
        nameof(PromptTemplate.Llama2) => PromptTemplate.Llama2,
        _ => PromptTemplate.Mistral,
    };

    [Theory]
    [MemberData(nameof(Presets))]
    public void A_chat_family_renders_an_instruction_as_one_user_turn_exactly_as_llama_cpp_does(string preset, string llamaCppName)
    {
        var template = Preset(preset);
        LlamaCppModel.Configure();
        foreach (var (instruction, input) in new[] { ("Is it fair to keep found money?", ""), ("Rate this answer.", "Honesty matters.") })
        {
            var t = new LLamaTemplate(llamaCppName) { AddAssistant = true };
            t.Add("user", input.Length == 0 ? instruction : instruction + "\n\n" + input);
            Assert.Equal(Encoding.UTF8.GetString(t.Apply()), template.Render(instruction, input));
            Assert.True(template.TryParse(template.Render(instruction, input), out var i, out var inp));
            Assert.Equal((instruction, input), (i, inp));
        }
    }

    [Fact]
    public void The_Alpaca_default_is_unchanged_and_carries_its_Jinja_while_custom_texts_carry_none()
    {
        Assert.Equal("### Instruction:\nWhy?\n\n### Response:", PromptTemplate.Alpaca.Render("Why?", null));
        Assert.Equal(ChatTemplateFamily.Alpaca, PromptTemplate.Alpaca.Family);
        Assert.Equal(ChatTemplates.Jinja(ChatTemplateFamily.Alpaca), PromptTemplate.Alpaca.ChatTemplate);
        var custom = new PromptTemplate { WithInput = "Q: {instruction} ({input})\nA:", WithoutInput = "Q: {instruction}\nA:" };
        Assert.Null(custom.ChatTemplate);
        Assert.Equal("Q: x\nA:", custom.Render("x", ""));
    }

    [Fact]
    public void The_family_comes_from_the_checkpoint_tokenizer_config_and_its_text_is_kept_for_export()
    {
        using var temp = new TempFolder("sa-prompt-");
        var qwen = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        File.WriteAllText(temp.File("tokenizer_config.json"), new JsonObject { ["chat_template"] = qwen }.ToJsonString());
        var template = PromptTemplate.FromTokenizerConfig(temp.File("tokenizer_config.json"));
        Assert.Equal(ChatTemplateFamily.ChatMl, template.Family);
        Assert.Equal(qwen, template.ChatTemplate);

        // Newer files list named templates; "default" is the chat one.
        File.WriteAllText(temp.File("tokenizer_config.json"), new JsonObject
        {
            ["chat_template"] = new JsonArray(new JsonObject { ["name"] = "tool_use", ["template"] = "{{ tools }}" }, new JsonObject { ["name"] = "default", ["template"] = ChatTemplates.Jinja(ChatTemplateFamily.Llama3) }),
        }.ToJsonString());
        Assert.Equal(ChatTemplateFamily.Llama3, PromptTemplate.FromTokenizerConfig(temp.File("tokenizer_config.json")).Family);

        File.WriteAllText(temp.File("tokenizer_config.json"), new JsonObject { ["chat_template"] = "{{ messages | tojson }}" }.ToJsonString());
        var ex = Assert.Throws<ArgumentException>(() => PromptTemplate.FromTokenizerConfig(temp.File("tokenizer_config.json")));
        Assert.Contains("PromptTemplate.ForFamily", ex.Message, StringComparison.Ordinal);
        File.WriteAllText(temp.File("tokenizer_config.json"), "{}");
        Assert.Throws<InvalidDataException>(() => PromptTemplate.FromTokenizerConfig(temp.File("tokenizer_config.json")));
    }
}
