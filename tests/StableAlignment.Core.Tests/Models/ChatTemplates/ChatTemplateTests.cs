using System.Text;
using LLama;
using StableAlignment.Core.Models;

namespace StableAlignment.Core.Tests.Models;

/// <summary>Every chat family against llama.cpp's own template code (<c>llama_chat_apply_template</c> via LLamaSharp's <see cref="LLamaTemplate"/>).</summary>
public class ChatTemplateTests
{
    private static readonly (string Role, string Content)[][] Conversations =
    [
        [("user", "Is it fair to keep money you found?")],
        [("system", "You are a careful, honest assistant."), ("user", "  Should I tell my friend the truth?  ")],
        [("system", "Be brief."), ("user", "Hi!"), ("assistant", " Hello. How can I help?\n"), ("user", "Is lying ever right?")],
        [("user", "First question"), ("assistant", "First answer"), ("user", "Second question"), ("assistant", "Second answer")],
    ];

    public static TheoryData<ChatTemplateFamily> LlamaCppFamilies => [.. Enum.GetValues<ChatTemplateFamily>().Where(f => f != ChatTemplateFamily.Alpaca)];

    private static string LlamaCpp(string template, IEnumerable<(string Role, string Content)> messages, bool addAssistant)
    {
        LlamaCppModel.Configure();
        var t = new LLamaTemplate(template) { AddAssistant = addAssistant };
        foreach (var (role, content) in messages) t.Add(role, content);
        return Encoding.UTF8.GetString(t.Apply());
    }

    [Theory]
    [MemberData(nameof(LlamaCppFamilies))]
    public void Each_family_renders_exactly_as_llama_cpp_renders_it_by_name_and_from_its_Jinja(ChatTemplateFamily family)
    {
        foreach (var conversation in Conversations)
            foreach (var addAssistant in new[] { true, false })
            {
                var ours = ChatTemplates.Render(family, conversation, addAssistant);
                Assert.Equal(LlamaCpp(ChatTemplates.Name(family), conversation, addAssistant), ours);
                // The Jinja an export writes back is recognised by llama.cpp as the same family.
                Assert.Equal(LlamaCpp(ChatTemplates.Jinja(family), conversation, addAssistant), ours);
            }
        Assert.Equal(family, ChatTemplates.Detect(ChatTemplates.Jinja(family)));
        Assert.Equal(family, ChatTemplates.Detect(ChatTemplates.Name(family)));
    }

    public static TheoryData<string, ChatTemplateFamily> CheckpointTemplates => new()
    {
        // Qwen2-Instruct
        { "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}", ChatTemplateFamily.ChatMl },
        // Llama-3-8B-Instruct
        { "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}", ChatTemplateFamily.Llama3 },
        // Llama-2-chat
        { "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}", ChatTemplateFamily.Llama2SystemStrip },
        // Mistral-7B-Instruct-v0.1
        { "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}", ChatTemplateFamily.Llama2 },
    };

    [Theory]
    [MemberData(nameof(CheckpointTemplates))]
    public void A_checkpoint_template_is_recognised_as_llama_cpp_recognises_it(string template, ChatTemplateFamily family)
    {
        Assert.Equal(family, ChatTemplates.Detect(template));
        foreach (var conversation in Conversations)
            Assert.Equal(LlamaCpp(template, conversation, true), ChatTemplates.Render(family, conversation, true));
    }

    [Fact]
    public void An_unknown_template_is_refused_with_its_text_and_how_to_choose_a_family()
    {
        var ex = Assert.Throws<ArgumentException>(() => ChatTemplates.Detect("{{ messages | tojson }}"));
        Assert.Contains("{{ messages | tojson }}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("PromptTemplate.ForFamily(ChatTemplateFamily.", ex.Message, StringComparison.Ordinal);

        var gemma = Assert.Throws<ArgumentException>(() => ChatTemplates.Detect("{{ '<start_of_turn>user\n' + message['content'] + '<end_of_turn>\n' }}"));
        Assert.Contains("llama.cpp's 'gemma' format", gemma.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_Alpaca_Jinja_is_recognised_as_Alpaca()
    {
        Assert.Equal(ChatTemplateFamily.Alpaca, ChatTemplates.Detect(ChatTemplates.Jinja(ChatTemplateFamily.Alpaca)));
        Assert.Equal("### Instruction:\nWhy?\n\n### Response:", ChatTemplates.Render(ChatTemplateFamily.Alpaca, [("user", "Why?")]));
    }
}
