namespace StableAlignment.Core.Tests; public class SmokeTests { [Fact] public void Runs() { using var t = TorchSharp.torch.ones(2); Assert.Equal(2, t.sum().item<float>()); } }
