using StableAlignment.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

// A tiny bigram language model trained with the contrastive preference loss on synthetic preference data:
// three responses per query, rated 1-7. The loss falls and the best-rated responses come to have the lowest NLL.
torch.manual_seed(0);
const int vocab = 64, dim = 32, queries = 6, perQuery = 3, length = 12;
var embedding = nn.Embedding(vocab, dim);
var head = nn.Linear(dim, vocab);
var model = nn.Sequential(("embedding", embedding), ("head", head));
var optimizer = optim.AdamW(model.parameters(), lr: 0.05);
var loss = new ContrastivePreferenceLoss(new ContrastivePreferenceOptions { Margin = 1, RankingWeight = 0.5 });

int n = queries * perQuery;
var ids = torch.randint(0, vocab, [n, length + 1]);
var groups = torch.arange(n, dtype: ScalarType.Int64).div(perQuery, rounding_mode: RoundingMode.floor);
var ratings = torch.tensor(Enumerable.Range(0, n).Select(i => (float)(1 + (i * 5 % 7))).ToArray());

for (int step = 0; step <= 100; step++)
{
    using var scope = torch.NewDisposeScope();
    var logits = model.call(ids[.., ..length]);
    using var result = loss.Compute(logits, ids[.., 1..], groups, ratings);
    optimizer.zero_grad();
    result.Loss.backward();
    optimizer.step();
    if (step % 10 == 0)
        Console.WriteLine($"step {step,3}  loss {result.Loss.item<float>():F4}  ranking accuracy {result.RankingAccuracy:P0}");
}
