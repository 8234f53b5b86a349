namespace StableAlignment.Core.Evaluation;

/// <summary>Scores multiple-choice tasks by likelihood, as lm-evaluation-harness does.</summary>
/// <remarks>
/// Every choice becomes one request: context = the item's context, continuation = the task's target delimiter
/// (a space by default) + the choice, after <see cref="LikelihoodRequest.Create"/> has moved trailing context
/// whitespace onto the continuation. Requests are sorted longest first (so a real model pads less) and sent in
/// batches; each result is mapped back to its item by index, so batch size cannot change any result.
/// </remarks>
public static class MultipleChoiceEvaluator
{
    /// <summary>Scores every item of a task.</summary>
    /// <param name="task">The task.</param>
    /// <param name="scorer">The model.</param>
    /// <param name="options">Options; defaults when <see langword="null"/>.</param>
    /// <param name="progress">Receives progress after each batch.</param>
    /// <param name="cancellationToken">Cancels the work between batches.</param>
    /// <returns>The per-item results.</returns>
    /// <exception cref="ArgumentException">The task or the options are invalid.</exception>
    /// <exception cref="InvalidOperationException">The scorer returned the wrong number of scores or an invalid score.</exception>
    public static async Task<TaskResults> EvaluateAsync(MultipleChoiceTask task, ILogLikelihoodScorer scorer,
        MultipleChoiceOptions? options = null, IProgress<EvaluationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(scorer);
        options ??= new MultipleChoiceOptions();
        options.Validate();
        task.Validate();

        var requests = new List<(LikelihoodRequest Request, int Item, int Choice)>();
        for (int i = 0; i < task.Items.Count; i++)
        {
            var item = task.Items[i];
            for (int c = 0; c < item.Choices.Count; c++)
            {
                requests.Add((LikelihoodRequest.Create(item.Context, task.TargetDelimiter + item.Choices[c]), i, c));
            }
        }
        // Longest first, ties in task order: a fixed order that depends on the requests alone, never on batch size.
        var order = Enumerable.Range(0, requests.Count)
            .OrderByDescending(k => requests[k].Request.Context.Length + requests[k].Request.Continuation.Length)
            .ThenBy(k => k)
            .ToArray();

        var scores = new LikelihoodScore[requests.Count];
        var batch = new List<LikelihoodRequest>(options.BatchSize);
        for (int start = 0; start < order.Length; start += options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int end = Math.Min(order.Length, start + options.BatchSize);
            batch.Clear();
            for (int k = start; k < end; k++)
            {
                batch.Add(requests[order[k]].Request);
            }
            var results = await scorer.ScoreAsync(batch.ToArray(), cancellationToken).ConfigureAwait(false);
            if (results is null || results.Count != batch.Count)
            {
                throw new InvalidOperationException(
                    $"Task '{task.Name}': the scorer returned {results?.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "null"} scores for a batch of {batch.Count} requests.");
            }
            for (int k = start; k < end; k++)
            {
                var r = results[k - start];
                var (_, item, choice) = requests[order[k]];
                if (double.IsNaN(r.LogLikelihood) || double.IsPositiveInfinity(r.LogLikelihood))
                {
                    throw new InvalidOperationException(
                        $"Task '{task.Name}', item '{task.Items[item].Id}', choice {choice}: the scorer returned {r.LogLikelihood}; a log-likelihood must be finite or negative infinity.");
                }
                scores[order[k]] = r;
            }
            progress?.Report(new EvaluationProgress(task.Name, end, order.Length));
        }

        var items = new ItemResult[task.Items.Count];
        int next = 0;
        for (int i = 0; i < task.Items.Count; i++)
        {
            var item = task.Items[i];
            var ll = new double[item.Choices.Count];
            var tokens = new int?[item.Choices.Count];
            for (int c = 0; c < ll.Length; c++, next++)
            {
                ll[c] = scores[next].LogLikelihood;
                tokens[c] = scores[next].TokenCount;
            }
            items[i] = new ItemResult
            {
                Model = options.ModelName,
                Task = task.Name,
                Id = item.Id,
                Category = item.Category,
                Group = item.Group,
                Context = options.KeepContext ? item.Context : null,
                Choices = item.Choices,
                Labels = item.Labels,
                LogLikelihoods = ll,
                TokenCounts = tokens.Any(t => t.HasValue) ? tokens : null,
                Metrics = ItemMetrics.Compute(item.Choices, item.Labels, ll, options.TieBreaking),
            };
        }
        return new TaskResults(task.Name, task.Primary, options.TieBreaking, items) { Model = options.ModelName };
    }
}
