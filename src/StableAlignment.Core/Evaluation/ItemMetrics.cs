using System.Text;

namespace StableAlignment.Core.Evaluation;

/// <summary>The per-item numbers derived from the choices' log-likelihoods.</summary>
/// <param name="Accuracy"><c>acc</c>: the best raw log-likelihood is a correct choice.</param>
/// <param name="AccuracyNormalized"><c>acc_norm</c>: the best log-likelihood per character (Unicode scalar values,
/// as Python's <c>len</c>) of the choice is a correct choice.</param>
/// <param name="AccuracyBytes"><c>acc_bytes</c>: the same per UTF-8 byte.</param>
/// <param name="TrueProbabilityMass">Probability mass on the correct choices after normalising exp(log-likelihood)
/// over the choices (TruthfulQA MC2; for one correct choice, its probability).</param>
/// <param name="Brier">Multi-class Brier score of the normalised choice probabilities against the target
/// distribution (1 on the correct choice; with several correct choices, spread equally over them); 0 is perfect,
/// 2 the worst.</param>
public readonly record struct ItemMetrics(
    bool Accuracy, bool AccuracyNormalized, bool AccuracyBytes, double TrueProbabilityMass, double Brier)
{
    /// <summary>Computes the metrics of one item.</summary>
    /// <param name="choices">The choice texts (for the length normalisations).</param>
    /// <param name="labels">Which choices are correct.</param>
    /// <param name="logLikelihoods">One finite or negative-infinite score per choice.</param>
    /// <param name="tieBreaking">How ties are judged.</param>
    /// <returns>The metrics.</returns>
    /// <exception cref="ArgumentException">Lengths disagree, no choice is correct, or a score is NaN or +infinity.</exception>
    public static ItemMetrics Compute(IReadOnlyList<string> choices, IReadOnlyList<bool> labels,
        IReadOnlyList<double> logLikelihoods, TieBreaking tieBreaking)
    {
        ArgumentNullException.ThrowIfNull(choices);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(logLikelihoods);
        int n = choices.Count;
        if (labels.Count != n || logLikelihoods.Count != n)
        {
            throw new ArgumentException($"Got {n} choices, {labels.Count} labels and {logLikelihoods.Count} scores; they must match.");
        }
        int trueCount = 0;
        for (int i = 0; i < n; i++)
        {
            if (double.IsNaN(logLikelihoods[i]) || double.IsPositiveInfinity(logLikelihoods[i]))
            {
                throw new ArgumentException($"The score of choice {i} is {logLikelihoods[i]}; scores must be finite or negative infinity.");
            }
            trueCount += labels[i] ? 1 : 0;
        }
        if (trueCount == 0)
        {
            throw new ArgumentException("No choice is labelled correct.");
        }

        var perChar = new double[n];
        var perByte = new double[n];
        for (int i = 0; i < n; i++)
        {
            perChar[i] = logLikelihoods[i] / CharacterLength(choices[i]);
            perByte[i] = logLikelihoods[i] / Encoding.UTF8.GetByteCount(choices[i]);
        }

        var probabilities = Softmax(logLikelihoods);
        double mass = 0, brier = 0;
        for (int i = 0; i < n; i++)
        {
            double target = labels[i] ? 1.0 / trueCount : 0.0;
            mass += labels[i] ? probabilities[i] : 0.0;
            brier += (probabilities[i] - target) * (probabilities[i] - target);
        }
        return new ItemMetrics(
            IsCorrect(logLikelihoods, labels, tieBreaking),
            IsCorrect(perChar, labels, tieBreaking),
            IsCorrect(perByte, labels, tieBreaking),
            mass,
            brier);
    }

    /// <summary>Length in Unicode scalar values, which is what Python's <c>len</c> counts.</summary>
    internal static int CharacterLength(string text)
    {
        int count = 0;
        foreach (var _ in text.EnumerateRunes())
        {
            count++;
        }
        return count;
    }

    /// <summary>Whether the top raw score is shared by a correct and an incorrect choice, so the tie rule decides.</summary>
    internal static bool TopIsTied(IReadOnlyList<double> scores, IReadOnlyList<bool> labels)
    {
        double top = scores.Max();
        bool correct = false, incorrect = false;
        for (int i = 0; i < scores.Count; i++)
        {
            if (scores[i] == top)
            {
                correct |= labels[i];
                incorrect |= !labels[i];
            }
        }
        return correct && incorrect;
    }

    internal static bool IsCorrect(IReadOnlyList<double> scores, IReadOnlyList<bool> labels, TieBreaking tieBreaking)
    {
        if (tieBreaking == TieBreaking.FirstIndex)
        {
            int best = 0;
            for (int i = 1; i < scores.Count; i++)
            {
                if (scores[i] > scores[best])
                {
                    best = i;
                }
            }
            return labels[best];
        }

        double bestTrue = double.NegativeInfinity, bestFalse = double.NegativeInfinity;
        bool anyFalse = false;
        for (int i = 0; i < scores.Count; i++)
        {
            if (labels[i])
            {
                bestTrue = Math.Max(bestTrue, scores[i]);
            }
            else
            {
                anyFalse = true;
                bestFalse = Math.Max(bestFalse, scores[i]);
            }
        }
        return !anyFalse || bestTrue > bestFalse;
    }

    /// <summary>exp(s_i) normalised over the choices, computed stably; uniform when every score is -infinity.</summary>
    internal static double[] Softmax(IReadOnlyList<double> scores)
    {
        double max = double.NegativeInfinity;
        foreach (double s in scores)
        {
            max = Math.Max(max, s);
        }
        var p = new double[scores.Count];
        if (double.IsNegativeInfinity(max))
        {
            Array.Fill(p, 1.0 / scores.Count);
            return p;
        }
        double sum = 0;
        for (int i = 0; i < p.Length; i++)
        {
            p[i] = Math.Exp(scores[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < p.Length; i++)
        {
            p[i] /= sum;
        }
        return p;
    }
}
